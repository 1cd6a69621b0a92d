package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
)

// apiError is an error answer: {"error": {"code", "message", "fields"}}.
type apiError struct {
	Status  int         `json:"-"`
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Fields  []fieldJSON `json:"fields,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// fieldJSON is one problem of a request, named by the JSON field (or the
// query parameter) it is in.
type fieldJSON struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	// Line and Column locate a problem in a condition's expression.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

type errorBody struct {
	Error *apiError `json:"error"`
}

// badRequest is a 400 about one field or query parameter.
func badRequest(code, field, format string, a ...any) *apiError {
	msg := fmt.Sprintf(format, a...)
	e := &apiError{Status: http.StatusBadRequest, Code: code, Message: msg}
	if field != "" {
		e.Fields = []fieldJSON{{Field: field, Message: msg}}
	}
	return e
}

// invalidWebhook is a 422 about one field of a webhook.
func invalidWebhook(field, format string, a ...any) *apiError {
	msg := fmt.Sprintf(format, a...)
	return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_webhook",
		Message: "the webhook is invalid: " + msg, Fields: []fieldJSON{{Field: field, Message: msg}}}
}

func notFound(what, id string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("%s %q not found", what, id)}
}

// fail writes err as an error answer. Errors the API does not know are
// logged and answered 500 without their text.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae := h.toAPIError(r, err)
	writeJSON(w, ae.Status, errorBody{Error: ae})
}

func (h *handler) toAPIError(r *http.Request, err error) *apiError {
	var ae *apiError
	var ve *webhook.ValidationError
	var ce *condition.CompileError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ve):
		e := &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_webhook", Message: "the webhook is invalid"}
		for _, p := range ve.Problems {
			f := fieldJSON{Field: p.Field, Message: p.Message}
			var fe *transform.FieldError
			switch {
			case errors.As(p.Err, &ce):
				f.Line, f.Column = ce.Line, ce.Column
			case errors.As(p.Err, &fe):
				f.Line, f.Column = fe.Line, fe.Column
			}
			e.Fields = append(e.Fields, f)
		}
		if len(ve.Problems) == 1 {
			e.Message += ": " + ve.Problems[0].Message
		}
		return e
	case errors.Is(err, webhook.ErrInvalidWebhook):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_webhook", Message: err.Error()}
	case errors.Is(err, webhook.ErrConflict):
		return &apiError{Status: http.StatusConflict, Code: "version_conflict",
			Message: "the webhook changed since it was read; read it again and retry"}
	case errors.Is(err, webhook.ErrPending):
		return &apiError{Status: http.StatusConflict, Code: "delivery_pending",
			Message: "the delivery is still pending; only a finished delivery can be replayed"}
	case errors.Is(err, webhook.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	case errors.Is(err, webhook.ErrInvalidQuery):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_query", Message: err.Error()}
	case errors.Is(err, webhook.ErrNoAudit):
		return &apiError{Status: http.StatusNotImplemented, Code: "not_implemented",
			Message: "the store keeps no audit trail"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the request was cut short"}
	}
	h.log.Error("herald admin: internal error", "method", r.Method, "path", r.URL.Path, "error", err)
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}
