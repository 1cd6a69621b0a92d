package webhook

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/heraldhr/herald/transform"
)

// minEchoed is the shortest credential value looked for in an answer:
// shorter ones would mask ordinary words ("true", "acme") in what is kept.
const minEchoed = 6

// sentCredentials returns the credential values a request carried, in
// every form a receiver might echo back: each header value the delivery
// log masks (the webhook's headers, a before hook's, the receiver auth),
// and its part after the scheme ("Bearer <token>"), the password of Basic
// auth, and the user info and query values of the URL.
func sentCredentials(req *http.Request) []string {
	var out []string
	add := func(s string) {
		if len(s) >= minEchoed {
			out = append(out, s)
		}
	}
	for k, vs := range req.Header {
		switch k {
		case "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Content-Type", "User-Agent":
			continue
		}
		for _, v := range vs {
			add(v)
			if scheme, rest, ok := strings.Cut(v, " "); ok {
				add(strings.TrimSpace(rest))
				if strings.EqualFold(scheme, "Basic") {
					if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest)); err == nil {
						_, pass, _ := strings.Cut(string(b), ":")
						add(pass)
					}
				}
			}
		}
	}
	if u := req.URL; u != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			for _, vs := range q {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	return out
}

// unechoed returns body with every credential the request sent masked, for
// the delivery log: receivers often quote a key they refuse ("invalid API
// key ...").
func unechoed(body []byte, creds []string) []byte {
	for _, c := range creds {
		if strings.Contains(string(body), c) {
			body = []byte(strings.ReplaceAll(string(body), c, Masked))
		}
	}
	return body
}

// unechoedError returns err, or when its text quotes a credential the
// request sent (net/http quotes a malformed status line) or a value the
// webhook redacts, an error that says the same without it.
func unechoedError(err error, creds []string, w *compiled, msg *transform.Message) error {
	if err == nil {
		return nil
	}
	text := string(unechoed([]byte(err.Error()), creds))
	if w.mapper.Redacts() && msg != nil {
		text = string(w.mapper.RedactResponse([]byte(text), "text/plain", msg.Records))
	}
	if text == err.Error() {
		return err
	}
	return errors.New(text)
}
