// Package webhooks (ports/http) serves the SMS provider's webhooks: inbound texts (STOP and
// START keywords) and delivery status callbacks. They are not authenticated with a bearer
// token (the provider has none) but with the provider's signature of each request.
package webhooks

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/sms"
	"github.com/trellis-health/trellis/services/notification/internal/app"
)

// Paths of the webhooks (under PUBLIC_BASE_URL).
const (
	PathInbound = "/webhooks/sms/inbound"
	PathStatus  = "/webhooks/sms/status"
)

// maxBody bounds a webhook request.
const maxBody = 64 << 10

// Webhooks serves the provider's webhooks.
type Webhooks struct {
	Delivery *app.Delivery
	// Token is the provider's auth token: every request must carry a valid X-Twilio-Signature
	// made with it. Empty: signatures are not checked (local development only).
	Token string
	// PublicBaseURL is the URL the provider was given for this service (the signature covers
	// PublicBaseURL + path); empty: rebuilt from the request's Host.
	PublicBaseURL string
	Log           *slog.Logger
}

// Mount adds the webhooks to a server (rpc.Server.Handle or an http.ServeMux).
func (h Webhooks) Mount(handle func(pattern string, handler http.Handler)) {
	handle("POST "+PathInbound, http.HandlerFunc(h.inbound))
	handle("POST "+PathStatus, http.HandlerFunc(h.status))
}

// verify parses the form and checks its signature; on failure it has answered. A verified
// request acts for no caller but the provider (a number's STOP, a message's delivery report,
// of any clinic): the handlers run in system scope (auth.WithSystemScope), which the
// signature, not a token, allows.
func (h Webhooks) verify(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return false
	}
	if h.Token == "" {
		return true
	}
	base := strings.TrimRight(h.PublicBaseURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	if !sms.ValidSignature(h.Token, base+r.URL.RequestURI(), r.PostForm, r.Header.Get(sms.SignatureHeader)) {
		h.Log.WarnContext(r.Context(), "sms webhook refused: bad signature", "path", r.URL.Path)
		http.Error(w, "invalid signature", http.StatusForbidden)
		return false
	}
	return true
}

// inbound applies STOP / START (and synonyms) from a patient's reply at once, and answers an
// empty TwiML response (the provider sends its own confirmation for these keywords).
func (h Webhooks) inbound(w http.ResponseWriter, r *http.Request) {
	if !h.verify(w, r) {
		return
	}
	from := strings.TrimSpace(r.PostForm.Get("From"))
	if from != "" {
		if _, err := h.Delivery.SMSKeyword(auth.WithSystemScope(r.Context()), from, r.PostForm.Get("Body")); err != nil {
			h.Log.ErrorContext(r.Context(), "inbound text not applied", "error", err)
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response/>`))
}

// status applies a delivery report (MessageSid, MessageStatus, ErrorCode). Intermediate
// statuses, unknown ids and repeats change nothing and are acknowledged.
func (h Webhooks) status(w http.ResponseWriter, r *http.Request) {
	if !h.verify(w, r) {
		return
	}
	final, reason := sms.Outcome(r.PostForm.Get("MessageStatus"), r.PostForm.Get("ErrorCode"))
	if final != "" {
		if err := h.Delivery.ProviderStatus(auth.WithSystemScope(r.Context()), r.PostForm.Get("MessageSid"), final, reason); err != nil {
			h.Log.ErrorContext(r.Context(), "delivery report not applied", "error", err)
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
