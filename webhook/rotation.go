package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heraldhr/herald/signer"
)

// DefaultRotationGrace is how long a rotated-out secret keeps signing when
// RotateSecret is given a grace of 0.
const DefaultRotationGrace = 24 * time.Hour

// RotateSecret gives a webhook a new signing secret of the same kind as
// its current one (a "whsec_" secret, or an Ed25519 key pair whose new
// PublicKey is on the returned webhook). The old secret keeps signing
// beside the new one until grace has passed (0: DefaultRotationGrace), so
// each request carries both signatures in its webhook-signature header
// and a receiver holding either secret accepts it: the receiver switches
// to the new secret at any time within the grace. After the grace only
// the new secret signs.
//
// A negative grace revokes at once, for a secret that leaked: from the
// next attempt only the new secret signs, and secrets still in the grace
// of earlier rotations stop too.
//
// Expiry is read from Config.Clock at each attempt. A webhook keeps at
// most MaxPreviousSecrets secrets in their grace.
func (d *Dispatcher) RotateSecret(ctx context.Context, webhookID string, grace time.Duration) (Webhook, error) {
	return d.rotate(ctx, webhookID, "", grace)
}

// RotateSecretTo is RotateSecret with a new secret the caller supplies:
// a "whsec_" secret or a "whsk_" Ed25519 private key. It may be of the
// other kind than the current one, so a webhook moves from HMAC to
// Ed25519 signatures (or back) with both signing during the grace.
func (d *Dispatcher) RotateSecretTo(ctx context.Context, webhookID, secret string, grace time.Duration) (Webhook, error) {
	if err := signer.ValidateSecret(secret); err != nil {
		return Webhook{}, invalid([]error{inField("secret", errors.New("new secret is malformed (expected whsec_ or whsk_ followed by base64)"))})
	}
	return d.rotate(ctx, webhookID, secret, grace)
}

func (d *Dispatcher) rotate(ctx context.Context, id, secret string, grace time.Duration) (Webhook, error) {
	_, out, err := d.modify(ctx, id, func(w *Webhook) error {
		next := secret
		if next == "" {
			var err error
			if next, err = generateSecret(schemeOf(w.Secret)); err != nil {
				return err
			}
		}
		if next == w.Secret {
			return invalid([]error{inField("secret", errors.New("the new secret is the current one"))})
		}
		now := d.now()
		if grace == 0 {
			grace = DefaultRotationGrace
		}
		if grace < 0 {
			w.PreviousSecrets = nil
		} else {
			prev := livePrevious(w.PreviousSecrets, now)
			if len(prev) >= MaxPreviousSecrets {
				return invalid([]error{inField("previous_secrets", fmt.Errorf("%d secrets are still in their grace (at most %d); wait for one to expire or rotate with a negative grace",
					len(prev), MaxPreviousSecrets))})
			}
			w.PreviousSecrets = append([]Secret{{Value: w.Secret, RotatedAt: now, ExpiresAt: now.Add(grace)}}, prev...)
		}
		w.Secret = next
		w.SignatureScheme = ""
		return nil
	})
	if err != nil {
		return Webhook{}, err
	}
	d.recordChange(ctx, out, audited{action: AuditSecretRotated, detail: rotationDetail(grace)})
	d.log.Info("herald: webhook secret rotated", "webhook_id", out.ID, "scheme", out.SignatureScheme,
		"grace", max(grace, 0), "previous_secrets", len(out.PreviousSecrets))
	return out, nil
}
