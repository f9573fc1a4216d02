// Package smsfake is a local SMS provider speaking the subset of Twilio's REST API that
// adapters/sms uses. It records the texts it is given instead of sending them, can be told to
// fail the next sends (transient 503 or permanent 400 with code 21211), and posts signed
// webhooks (status callbacks, inbound texts) the way the real provider does. Tests run it
// with Start; the dev stack mounts it on notification's own server (SMS_PROVIDER_URL=fake).
package smsfake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-health/trellis/services/notification/internal/adapters/sms"
)

// Message is a text the fake accepted.
type Message struct {
	SID            string    `json:"sid"`
	To             string    `json:"to"`
	From           string    `json:"from"`
	Body           string    `json:"body"`
	Status         string    `json:"status"`
	StatusCallback string    `json:"status_callback,omitempty"`
	At             time.Time `json:"at"`
}

// Failure is how the fake refuses a send.
type Failure int

const (
	// Unavailable answers 503 (a transient failure: retried).
	Unavailable Failure = iota
	// InvalidNumber answers 400 with code 21211 (a permanent failure).
	InvalidNumber
)

// Provider is the fake. Its zero value is not usable: call New.
type Provider struct {
	accountSID, token string
	// Target, when set, is where webhooks are sent instead of the host in their URL (like a
	// tunnel in front of the service): the signature still covers the URL as given.
	Target string
	// AutoDeliver makes the fake report every accepted text as delivered (dev stack).
	AutoDeliver bool

	mu       sync.Mutex
	messages []Message
	failures []Failure
	seq      int
	client   *http.Client
}

// New returns a fake for the account; webhooks are signed with token.
func New(accountSID, token string) *Provider {
	return &Provider{accountSID: accountSID, token: token, client: &http.Client{Timeout: 10 * time.Second}}
}

// Server is a fake running on a local port.
type Server struct {
	*Provider
	URL string // base URL for sms.Config.BaseURL
}

// Start runs a fake on a local port until the test ends.
func Start(t testing.TB, accountSID, token string) *Server {
	t.Helper()
	p := New(accountSID, token)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &Server{Provider: p, URL: srv.URL}
}

// FailNext makes the next n sends fail with f.
func (p *Provider) FailNext(n int, f Failure) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range n {
		p.failures = append(p.failures, f)
	}
}

// Messages returns the accepted texts, oldest first.
func (p *Provider) Messages() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Message(nil), p.messages...)
}

// ServeHTTP serves POST /2010-04-01/Accounts/{sid}/Messages.json and GET /messages (the
// recorded texts, as JSON).
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/messages":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Messages())
	case r.Method == http.MethodPost && r.URL.Path == "/2010-04-01/Accounts/"+p.accountSID+"/Messages.json":
		p.create(w, r)
	default:
		writeError(w, http.StatusNotFound, 20404, "not found")
	}
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "status": status})
}

func (p *Provider) create(w http.ResponseWriter, r *http.Request) {
	if sid, token, ok := r.BasicAuth(); !ok || sid != p.accountSID || token != p.token {
		writeError(w, http.StatusUnauthorized, 20003, "authenticate")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 20001, "bad form")
		return
	}
	to, body := r.PostForm.Get("To"), r.PostForm.Get("Body")
	from := r.PostForm.Get("From")
	if from == "" {
		from = r.PostForm.Get("MessagingServiceSid")
	}
	if to == "" || body == "" || from == "" {
		writeError(w, http.StatusBadRequest, 21604, "To, Body and From are required")
		return
	}
	p.mu.Lock()
	if len(p.failures) > 0 {
		f := p.failures[0]
		p.failures = p.failures[1:]
		p.mu.Unlock()
		if f == InvalidNumber {
			writeError(w, http.StatusBadRequest, 21211, "The 'To' number is not a valid phone number.")
		} else {
			writeError(w, http.StatusServiceUnavailable, 20503, "service unavailable")
		}
		return
	}
	p.seq++
	m := Message{SID: fmt.Sprintf("SMfake%026d", p.seq), To: to, From: from, Body: body, Status: "queued",
		StatusCallback: r.PostForm.Get("StatusCallback"), At: time.Now().UTC()}
	p.messages = append(p.messages, m)
	auto := p.AutoDeliver && m.StatusCallback != ""
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"sid": m.SID, "status": m.Status, "to": m.To, "from": m.From,
		"error_code": nil, "error_message": nil})
	if auto {
		go func() {
			time.Sleep(500 * time.Millisecond) // after the sender has recorded the sid (dev only)
			_ = p.Callback(context.Background(), m.SID, "delivered", "")
		}()
	}
}

// Callback posts a signed status callback for the text with sid (status delivered,
// undelivered or failed; errorCode "" for none) to the URL it was sent with.
func (p *Provider) Callback(ctx context.Context, sid, status, errorCode string) error {
	var m *Message
	p.mu.Lock()
	for i := range p.messages {
		if p.messages[i].SID == sid {
			p.messages[i].Status = status
			m = &p.messages[i]
		}
	}
	var cp Message
	if m != nil {
		cp = *m
	}
	p.mu.Unlock()
	if m == nil || cp.StatusCallback == "" {
		return fmt.Errorf("smsfake: no text %s with a status callback", sid)
	}
	form := url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {p.accountSID}, "MessageStatus": {status},
		"SmsStatus": {status}, "To": {cp.To}, "From": {cp.From}}
	if errorCode != "" {
		form.Set("ErrorCode", errorCode)
	}
	return p.post(ctx, cp.StatusCallback, form)
}

// Inbound posts a signed inbound text from a number (as the provider does when a patient
// replies) to webhookURL, e.g. PUBLIC_BASE_URL + "/webhooks/sms/inbound".
func (p *Provider) Inbound(ctx context.Context, webhookURL, from, to, body string) error {
	p.mu.Lock()
	p.seq++
	sid := fmt.Sprintf("SMin%028d", p.seq)
	p.mu.Unlock()
	return p.post(ctx, webhookURL, url.Values{"MessageSid": {sid}, "AccountSid": {p.accountSID},
		"From": {from}, "To": {to}, "Body": {body}, "NumMedia": {"0"}})
}

// post sends a signed form to webhookURL (via Target when set) and wants a 2xx answer.
func (p *Provider) post(ctx context.Context, webhookURL string, form url.Values) error {
	dest := webhookURL
	if p.Target != "" {
		u, err := url.Parse(webhookURL)
		if err != nil {
			return err
		}
		dest = strings.TrimRight(p.Target, "/") + u.RequestURI()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dest, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(sms.SignatureHeader, sms.Signature(p.token, webhookURL, form))
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("smsfake: webhook answered %d", resp.StatusCode)
	}
	return nil
}
