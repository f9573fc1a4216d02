package domain

import "time"

// Message kinds. Patient messages name no service type, program or condition (templates are
// checked); staff alerts go to a team address and carry ids and counts only.
const (
	KindWelcome              = "welcome"               // admission + enrollment: first visit and first week
	KindReminder             = "reminder"              // before an appointment (one per offset)
	KindAppointmentMoved     = "appointment_moved"     // an appointment was rescheduled
	KindAppointmentCancelled = "appointment_cancelled" // an appointment was cancelled
	KindCheckIn              = "check_in"              // after a missed session
	KindStatement            = "statement"             // a statement is ready

	KindStaffAtRisk        = "staff_patient_at_risk"       // care team: a patient at risk
	KindStaffAuthorization = "staff_authorization"         // billing: authorization nearly used or exhausted
	KindStaffConsentHold   = "staff_claims_held_consent"   // billing: charges held for consent
	KindStaffUndeliverable = "staff_message_undeliverable" // care team: a patient message failed for good
	KindStaffDeadLetter    = "staff_dead_letter"           // operations: an event was dead-lettered
)

// Channels.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// Audiences and staff teams.
const (
	AudiencePatient = "patient"
	AudienceStaff   = "staff"

	TeamCareTeam   = "care_team"
	TeamBilling    = "billing"
	TeamOperations = "operations"
)

// Message statuses: queued until sent (then delivered when the provider confirms), failed for
// good, cancelled before it was sent (the appointment moved or was cancelled, the patient was
// discharged, consent was revoked), or skipped when it was due (quiet hours past the
// appointment, texting limit, no channel the patient agreed to); Message.StatusReason says why.
const (
	StatusQueued    = "queued"
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
	StatusSkipped   = "skipped"
)

// Message is one message to a patient. It holds no content: the content is rendered from the
// recipient copy when the message is sent.
type Message struct {
	ID            string
	PatientID     string // "" for a staff alert about no patient
	ClinicID      string
	Kind          string
	Channel       string
	Audience      string
	Team          string
	SubjectRef    string
	Status        string
	StatusReason  string
	Attempts      int
	LastErrorCode string
	CreatedAt     time.Time
	DueAt         time.Time
	SentAt        *time.Time
	DeliveredAt   *time.Time
}

// Rendered is a message's text as the recipient reads it (Subject is empty for SMS).
type Rendered struct {
	Subject string
	Body    string
}

// RenderInput is what a template is rendered from: the message, the recipient's preferred
// name (patient messages), the locale, the clinic's contact number, and the message's payload
// (e.g. "date", "time", "balance", "due_date", "count").
type RenderInput struct {
	ClinicID    string
	Kind        string
	Channel     string
	Locale      string
	Name        string
	ClinicPhone string
	Payload     map[string]string
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
