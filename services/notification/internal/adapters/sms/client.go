// Package sms sends texts through a provider speaking Twilio's REST API (Twilio itself, or a
// compatible provider or the local fake in smsfake), and checks the signature of the
// provider's webhooks.
package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-health/trellis/services/notification/internal/app"
)

// Config is the provider account.
type Config struct {
	BaseURL             string // e.g. https://api.twilio.com (no trailing slash needed)
	AccountSID          string
	AuthToken           string
	From                string // sending number (E.164); or
	MessagingServiceSID string // a messaging service instead of From
	StatusCallback      string // URL of our status webhook ("" none)
	Timeout             time.Duration
	HTTPClient          *http.Client // default: one with Timeout
}

// Client implements app.SMSSender.
type Client struct {
	cfg      Config
	endpoint string
	http     *http.Client
}

var _ app.SMSSender = (*Client)(nil)

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" || cfg.AccountSID == "" || cfg.AuthToken == "" {
		return nil, errors.New("sms: provider URL, account sid and auth token are required")
	}
	if cfg.From == "" && cfg.MessagingServiceSID == "" {
		return nil, errors.New("sms: a sending number (SMS_FROM) or a messaging service sid is required")
	}
	if _, err := url.Parse(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("sms: provider URL: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	return &Client{cfg: cfg, http: hc,
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json"}, nil
}

// Timeout is the longest a send takes.
func (c *Client) Timeout() time.Duration { return c.cfg.Timeout }

// Error classes, stored as the message's last_error_code.
const (
	CodeUnavailable   = "sms_unavailable"  // cannot connect, 5xx
	CodeTimeout       = "sms_timeout"      // no answer in time
	CodeAuth          = "sms_auth"         // credentials refused (an operator fixes it; retried)
	CodeRateLimited   = "sms_rate_limited" // 429
	CodeRejected      = "sms_rejected"     // other 4xx: refused for good
	CodeOptedOut      = "sms_opted_out"    // the number replied STOP to the provider (21610)
	CodeBadResponse   = "sms_bad_response" // an answer we cannot read
	CodeInvalidNumber = app.CodeInvalidAddress
)

// answer is the provider's JSON: a message resource, or an error.
type answer struct {
	SID       string          `json:"sid"`
	Status    string          `json:"status"`
	ErrorCode json.RawMessage `json:"error_code"`
	Code      int             `json:"code"` // error answers
}

// SendSMS posts one message and returns the provider's id. Errors are *app.SendError.
func (c *Client) SendSMS(ctx context.Context, m app.OutgoingSMS) (string, error) {
	form := url.Values{"To": {m.To}, "Body": {m.Body}}
	if c.cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", c.cfg.MessagingServiceSID)
	} else {
		form.Set("From", c.cfg.From)
	}
	if c.cfg.StatusCallback != "" {
		form.Set("StatusCallback", c.cfg.StatusCallback)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", &app.SendError{Code: CodeUnavailable, Err: err}
	}
	req.SetBasicAuth(c.cfg.AccountSID, c.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// The message id lets a provider (or the fake) recognise a resend.
	req.Header.Set("I-Twilio-Idempotency-Token", m.MessageID)
	resp, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return "", &app.SendError{Code: CodeTimeout, Err: err}
		}
		return "", &app.SendError{Code: CodeUnavailable, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", &app.SendError{Code: CodeUnavailable, Err: err}
	}
	var a answer
	_ = json.Unmarshal(body, &a) // an unreadable error answer is classified by status alone
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if a.SID == "" {
			return "", &app.SendError{Code: CodeBadResponse, Err: errors.New("no sid in the answer")}
		}
		if code := errorCode(a.ErrorCode); code != 0 || a.Status == "failed" {
			_, reason := Outcome("failed", strconv.Itoa(code))
			return "", &app.SendError{Code: reason, Permanent: true, Err: fmt.Errorf("provider error %d", code)}
		}
		return a.SID, nil
	}
	return "", Classify(resp.StatusCode, a.Code)
}

// errorCode reads error_code, a number, a numeric string or null.
func errorCode(raw json.RawMessage) int {
	s := strings.Trim(string(raw), `"`)
	n, _ := strconv.Atoi(s)
	return n
}

// Classify turns an HTTP error answer (status and provider error code) into a send error:
// an invalid or unreachable number and other refusals are permanent; authentication
// problems, rate limits and server errors are retried.
func Classify(status, code int) *app.SendError {
	err := fmt.Errorf("provider answered %d (code %d)", status, code)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &app.SendError{Code: CodeAuth, Err: err}
	case status == http.StatusTooManyRequests:
		return &app.SendError{Code: CodeRateLimited, Err: err}
	case status >= 500:
		return &app.SendError{Code: CodeUnavailable, Err: err}
	case code == 21610:
		return &app.SendError{Code: CodeOptedOut, Permanent: true, Err: err}
	case code == 21211 || code == 21614 || code == 21217 || code == 21612 || code == 21408:
		return &app.SendError{Code: CodeInvalidNumber, Permanent: true, Err: err}
	case status >= 400:
		return &app.SendError{Code: CodeRejected, Permanent: true, Err: err}
	default:
		return &app.SendError{Code: CodeBadResponse, Err: err}
	}
}

// Outcome turns a status callback (MessageStatus, ErrorCode) into what it means for the
// message: final "delivered"; "failed" with a reason code; or "" for an intermediate status
// (queued, sending, sent, ...), which changes nothing.
func Outcome(status, errorCode string) (final, reason string) {
	switch status {
	case "delivered", "read":
		return "delivered", ""
	case "undelivered", "failed":
	default:
		return "", ""
	}
	switch errorCode {
	case "21610":
		return "failed", CodeOptedOut
	case "21211", "21614", "30005", "30006":
		return "failed", CodeInvalidNumber
	case "30007":
		return "failed", "sms_filtered"
	}
	if status == "failed" && errorCode != "" && errorCode != "0" {
		return "failed", "sms_failed"
	}
	return "failed", "undelivered"
}
