package domain

import "time"

// Message kinds, channels and statuses.
const (
	KindWelcome  = "welcome"
	ChannelEmail = "email"

	StatusQueued = "queued"
	StatusSent   = "sent"
	StatusFailed = "failed"
)

// Message is one message to a patient. It holds no content: the content is rendered from the
// recipient copy when the message is sent.
type Message struct {
	ID            string
	PatientID     string
	ClinicID      string
	Kind          string
	Channel       string
	Status        string
	Attempts      int
	LastErrorCode string
	CreatedAt     time.Time
	SentAt        *time.Time
}

// RetryPolicy decides what happens after a failed send.
type RetryPolicy struct {
	MaxAttempts int           // attempts in all, including the first
	Base        time.Duration // delay after the first failure; doubles after each further one
	Max         time.Duration // ceiling of the delay
}

// AfterFailure returns the delay before the next attempt, given how many attempts have been
// made, or giveUp when the message should be marked failed. permanent failures (the provider
// refused the address, there is no usable address) give up at once.
func (p RetryPolicy) AfterFailure(attempts int, permanent bool) (delay time.Duration, giveUp bool) {
	if permanent || attempts >= p.MaxAttempts {
		return 0, true
	}
	delay = p.Base
	for i := 1; i < attempts && delay < p.Max; i++ {
		delay *= 2
	}
	return min(delay, p.Max), false
}
