package store

// AckNotifier is a Notifier whose notifications also report the work an
// Ack makes claimable: once a record's head delivery ends, the next one of
// its key is due, and subscribers are told. A dispatcher on such a store
// wakes its claimer after an ack only when the store says so; on any
// other store it looks after every ack, and often finds nothing.
type AckNotifier interface {
	Notifier
	// NotifiesAcks reports whether Subscribe's channels receive a value
	// after every Ack that made a message claimable.
	NotifiesAcks() bool
}
