package admin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/heraldhr/herald/webhook"
)

// DefaultMaxBodyBytes is the largest request body the handler reads when
// Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// Errors a Resolve function returns (wrapped or not) to choose the answer:
// 401 for ErrUnauthenticated, 403 for ErrForbidden. Any other error
// answers 500 and is logged; its text is never shown to the caller.
var (
	ErrUnauthenticated = errors.New("admin: unauthenticated")
	ErrForbidden       = errors.New("admin: forbidden")
)

// Caller is who makes a request, as Options.Resolve tells it.
type Caller struct {
	// Tenant is the tenant whose webhooks, deliveries and audit trail the
	// caller sees and changes; every webhook it creates belongs to it.
	// Required unless Operator is set.
	Tenant string
	// Actor names the caller in the audit trail: a user id or an email,
	// as the application knows its users.
	Actor string
	// Operator lets the caller see and change every tenant's webhooks,
	// and the webhooks without a tenant, which receive every tenant's
	// changes. It is for the people who run the product, and for
	// single-tenant applications. Tenant must then be empty.
	Operator bool
}

// Options configure the handler New returns.
type Options struct {
	// Resolve tells who makes a request: the application reads its own
	// session or token here. Required. It runs before every route,
	// unknown ones included.
	Resolve func(*http.Request) (Caller, error)
	// Check, if set, is the application's own policy for a webhook about
	// to be created, updated or pinged unsaved, after the caller's tenant was set and
	// before the dispatcher validates it: a list of allowed hosts per
	// tenant, hooks only some tenants may name ... On an update, values
	// the caller sent back masked still read webhook.Masked. A
	// *webhook.ValidationError answers 422 with its fields; any other
	// error answers 403 with its text, so it must not hold secrets.
	Check func(r *http.Request, c Caller, w webhook.Webhook) error
	// MaxBodyBytes caps a request body; 0: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// TrustedOrigins are origins ("https://admin.example.com") whose
	// browser pages may call the API cross-origin. Cross-origin browser
	// requests that change something are refused otherwise (see
	// net/http.CrossOriginProtection). The handler sets no CORS headers:
	// an admin UI on another origin also needs the application's CORS
	// middleware in front of it, to answer preflight requests.
	TrustedOrigins []string
	// Logger receives internal errors and panics; nil: discarded.
	Logger *slog.Logger
}

// handler serves the admin API.
type handler struct {
	d       *webhook.Dispatcher
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	origins *http.CrossOriginProtection
}

// New returns the admin API of d as an http.Handler, to mount behind the
// application's own authentication, under a prefix of its choosing:
//
//	api, err := admin.New(d, admin.Options{Resolve: resolve})
//	mux.Handle("/admin/api/", http.StripPrefix("/admin/api", api))
//
// The routes, their JSON and their errors are described in the package
// documentation.
func New(d *webhook.Dispatcher, opts Options) (http.Handler, error) {
	var errs []error
	if d == nil {
		errs = append(errs, errors.New("admin: a dispatcher is required"))
	}
	if opts.Resolve == nil {
		errs = append(errs, errors.New("admin: Options.Resolve is required: it tells who makes a request"))
	}
	if opts.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("admin: Options.MaxBodyBytes must not be negative"))
	}
	origins := http.NewCrossOriginProtection()
	for _, o := range opts.TrustedOrigins {
		if err := origins.AddTrustedOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("admin: Options.TrustedOrigins: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &handler{d: d, opts: opts, log: log, mux: http.NewServeMux(), origins: origins}
	h.routes()
	return h, nil
}

// route registers a JSON route: f answers a status and a body to encode,
// or an error.
func (h *handler) route(pattern string, f func(*request) (int, any, error)) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		req := r.Context().Value(requestKey{}).(*request)
		req.r = r
		status, body, err := f(req)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, status, body)
	})
}

// routes registers every route and, for each path, a fallback that
// answers 405 to the other methods.
func (h *handler) routes() {
	allowed := map[string][]string{} // path -> methods
	add := func(method, path string, f func(*request) (int, any, error)) {
		h.route(method+" "+path, f)
		allowed[path] = append(allowed[path], method)
	}
	add("GET", "/webhooks", h.listWebhooks)
	add("POST", "/webhooks", h.createWebhook)
	// Not through add: a 405 fallback for this path would collide with
	// GET /webhooks/{id}, which answers its other methods.
	h.route("POST /webhooks/ping", h.pingUnsaved)
	add("GET", "/webhooks/{id}", h.getWebhook)
	add("PUT", "/webhooks/{id}", h.putWebhook)
	add("PATCH", "/webhooks/{id}", h.patchWebhook)
	add("DELETE", "/webhooks/{id}", h.deleteWebhook)
	add("POST", "/webhooks/{id}/enable", h.enableWebhook)
	add("POST", "/webhooks/{id}/disable", h.disableWebhook)
	add("POST", "/webhooks/{id}/rotate-secret", h.rotateSecret)
	add("POST", "/webhooks/{id}/ping", h.pingWebhook)
	add("GET", "/webhooks/{id}/health", h.webhookHealth)
	add("POST", "/webhooks/{id}/explain", h.explainWebhook)
	add("GET", "/webhooks/{id}/versions", h.listVersions)
	add("GET", "/webhooks/{id}/deliveries", h.listWebhookDeliveries)
	add("POST", "/webhooks/{id}/recover", h.recoverDeliveries)
	add("POST", "/conditions/explain", h.explainCondition)
	add("GET", "/deliveries", h.listDeliveries)
	add("GET", "/deliveries/{id}", h.getDelivery)
	add("GET", "/deliveries/{id}/attempts", h.listAttempts)
	add("POST", "/deliveries/{id}/replay", h.replayDelivery)
	add("GET", "/audit", h.listAudit)
	for path, methods := range allowed {
		allow := joinMethods(methods)
		h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			h.fail(w, r, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
				Message: fmt.Sprintf("%s is not allowed here; allowed: %s", r.Method, allow)})
		})
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such route"})
	})
}

func joinMethods(ms []string) string {
	var out []string
	for _, m := range ms {
		out = append(out, m)
		if m == http.MethodGet {
			out = append(out, http.MethodHead)
		}
	}
	return strings.Join(out, ", ")
}

// requestKey carries the *request of a call through the mux.
type requestKey struct{}

// ServeHTTP sets the headers every answer carries, refuses cross-origin
// browser requests that change something, resolves the caller and
// dispatches the route. A panic answers 500; the process lives on.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("herald admin: a route panicked", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			h.fail(w, r, errors.New("panic"))
		}
	}()
	if err := h.origins.Check(r); err != nil {
		h.fail(w, r, &apiError{Status: http.StatusForbidden, Code: "cross_origin",
			Message: "cross-origin requests that change something are refused; add the origin to Options.TrustedOrigins"})
		return
	}
	c, err := h.opts.Resolve(r)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		h.fail(w, r, &apiError{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: "authentication required"})
		return
	case errors.Is(err, ErrForbidden):
		h.fail(w, r, &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: "not allowed"})
		return
	case err != nil:
		h.log.Error("herald admin: resolving the caller failed", "method", r.Method, "path", r.URL.Path, "error", err)
		h.fail(w, r, &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
		return
	case c.Operator && c.Tenant != "":
		h.log.Error("herald admin: Resolve returned an operator with a tenant; refusing the request",
			"method", r.Method, "path", r.URL.Path)
		h.fail(w, r, &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
		return
	case !c.Operator && c.Tenant == "":
		h.fail(w, r, &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: "no tenant: the caller is neither a tenant nor an operator"})
		return
	}
	req := &request{h: h, w: w, caller: c}
	ctx := webhook.WithActor(r.Context(), c.Actor)
	h.mux.ServeHTTP(w, r.WithContext(withRequest(ctx, req)))
}
