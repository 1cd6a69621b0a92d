package transform

import (
	"fmt"
	"net/http"
	"strings"
)

// ReservedHeader reports whether a header name is set by herald itself and
// so may be set neither in a webhook's headers nor by a hook: the
// webhook-* signature headers, Host, Content-Length, Content-Type (set by
// the body format), Transfer-Encoding, and the hop-by-hop headers.
func ReservedHeader(name string) bool {
	n := http.CanonicalHeaderKey(strings.TrimSpace(name))
	if strings.HasPrefix(n, "Webhook-") {
		return true
	}
	switch n {
	case "Host", "Content-Length", "Content-Type", "Transfer-Encoding",
		"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Upgrade":
		return true
	}
	return false
}

// CheckHeader returns an error if name is not a valid header name, value
// holds a control character (CR, LF, NUL), or name is reserved.
func CheckHeader(name, value string) error {
	if name == "" {
		return fmt.Errorf("empty header name")
	}
	for i := 0; i < len(name); i++ {
		if !tokenChar(name[i]) {
			return fmt.Errorf("header name %q: invalid character %q", name, name[i])
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Errorf("header %s: value holds a control character", name)
		}
	}
	if ReservedHeader(name) {
		return fmt.Errorf("header %s is reserved: herald sets it", name)
	}
	return nil
}

func tokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// SetHeader adds a header to the message, refusing reserved names and
// invalid values.
func (m *Message) SetHeader(name, value string) error {
	if err := CheckHeader(name, value); err != nil {
		return err
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	m.Header.Set(name, value)
	return nil
}
