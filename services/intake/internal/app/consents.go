package app

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// Subjects of the consent events.
const (
	SubjectConsentGranted = "trellis.intake.consent.granted.v1"
	SubjectConsentRevoked = "trellis.intake.consent.revoked.v1"
)

// GrantConsent is the command to record a new consent version for a patient.
type GrantConsent struct {
	Caller         string // token subject
	IdempotencyKey string
	RequestHash    []byte
	CanSee         func(clinicID string) bool // the caller's clinic access
	PatientID      string
	Input          domain.ConsentInput
}

// GrantConsent records a new consent version (one more than the patient's latest) and marks
// the active one superseded, and emits ConsentGranted, in one transaction. The new version may
// not take effect before the latest one did, nor before its revocation did. An unknown patient,
// or one at a clinic the caller cannot see, is domain.ErrNotFound. A repeated idempotency key
// returns the first call's consent with replayed=true.
func (s *Intake) GrantConsent(ctx context.Context, cmd GrantConsent) (*intakev1.Consent, bool, error) {
	var resp *intakev1.GrantConsentResponse
	var replayed bool
	var supersedes string
	err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		clinicID, err := s.visiblePatientClinic(ctx, tx, cmd.PatientID, cmd.CanSee, true)
		if err != nil {
			return err
		}
		call := idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash}
		resp, replayed, err = idempotency.Once(ctx, tx, s.repo, call, &intakev1.GrantConsentResponse{}, func() (*intakev1.GrantConsentResponse, error) {
			latest, err := s.repo.LatestConsent(ctx, tx, cmd.PatientID)
			if err != nil {
				return nil, err
			}
			c, old, err := domain.GrantConsent(cmd.Input, cmd.PatientID, clinicID, latest, bus.NewID(), cmd.Caller, s.now())
			if err != nil {
				return nil, err
			}
			if err := s.repo.AddConsent(ctx, tx, c, old); err != nil {
				return nil, err
			}
			supersedes = c.SupersedesID
			tx.Emit(bus.Event{Subject: SubjectConsentGranted, ClinicID: c.ClinicID, Payload: &intakev1.ConsentGranted{
				ConsentId:           c.ID,
				PatientId:           c.PatientID,
				ClinicId:            c.ClinicID,
				Version:             int32(c.Version),
				Scopes:              scopeEnums(c.Scopes),
				Channels:            channelEnums(c.Channels),
				ConfidentialEmail:   c.ConfidentialEmail,
				ConfidentialPhone:   c.ConfidentialPhone,
				QuietHours:          quietHoursProto(c.QuietHours),
				Language:            c.Language,
				EffectiveFrom:       timestamppb.New(c.EffectiveFrom),
				ExpiresAt:           consentTimestamp(c.ExpiresAt),
				SupersedesConsentId: c.SupersedesID,
			}})
			return &intakev1.GrantConsentResponse{Consent: ConsentProto(c)}, nil
		})
		return err
	})
	if err != nil {
		return nil, false, err
	}
	c := resp.GetConsent()
	if replayed {
		s.log.InfoContext(ctx, "consent grant replayed", "consent_id", c.GetConsentId(), "patient_id", c.GetPatientId())
	} else {
		s.log.InfoContext(ctx, "consent granted", "consent_id", c.GetConsentId(), "patient_id", c.GetPatientId(),
			"clinic_id", c.GetClinicId(), "version", c.GetVersion(), "supersedes_consent_id", supersedes)
	}
	return c, replayed, nil
}

// RevokeConsent is the command to revoke a consent on a written revocation.
type RevokeConsent struct {
	Caller     string
	CanSee     func(clinicID string) bool
	ConsentID  string
	Revocation domain.Revocation
}

// RevokeConsent revokes the active consent and emits ConsentRevoked in one transaction. It
// takes no idempotency key: a repeat finds the consent revoked and fails with a
// *domain.PreconditionError, changing nothing. An unknown consent, or one at a clinic the
// caller cannot see, is domain.ErrNotFound.
func (s *Intake) RevokeConsent(ctx context.Context, cmd RevokeConsent) (*intakev1.Consent, error) {
	var out domain.Consent
	err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		// Locked: a concurrent grant superseding it, or a second revocation, waits and then
		// sees the new status.
		c, err := s.repo.Consent(ctx, tx, cmd.ConsentID)
		if err != nil {
			return err
		}
		if !cmd.CanSee(c.ClinicID) {
			return domain.ErrNotFound
		}
		out, err = c.Revoke(cmd.Revocation, cmd.Caller, s.now())
		if err != nil {
			return err
		}
		if err := s.repo.SaveRevocation(ctx, tx, out); err != nil {
			return err
		}
		tx.Emit(bus.Event{Subject: SubjectConsentRevoked, ClinicID: out.ClinicID, Payload: &intakev1.ConsentRevoked{
			ConsentId:   out.ID,
			PatientId:   out.PatientID,
			ClinicId:    out.ClinicID,
			Scopes:      scopeEnums(out.Scopes),
			EffectiveAt: timestamppb.New(out.RevocationEffectiveAt),
		}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "consent revoked", "consent_id", out.ID, "patient_id", out.PatientID, "clinic_id", out.ClinicID)
	return ConsentProto(out), nil
}

// ListConsents lists a patient's consent versions, newest first. An unknown patient, or one at
// a clinic canSee refuses, is domain.ErrNotFound.
func (s *Intake) ListConsents(ctx context.Context, patientID string, canSee func(string) bool) ([]*intakev1.Consent, error) {
	var out []*intakev1.Consent
	err := s.tx.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := s.visiblePatientClinic(ctx, tx, patientID, canSee, false); err != nil {
			return err
		}
		cs, err := s.repo.Consents(ctx, tx, patientID)
		if err != nil {
			return err
		}
		out = make([]*intakev1.Consent, len(cs))
		for i, c := range cs {
			out[i] = ConsentProto(c)
		}
		return nil
	})
	return out, err
}

// visiblePatientClinic returns the patient's clinic, or domain.ErrNotFound when there is no
// such patient or the caller cannot see its clinic (not revealing that it exists).
func (s *Intake) visiblePatientClinic(ctx context.Context, tx pgx.Tx, patientID string, canSee func(string) bool, lock bool) (string, error) {
	clinicID, err := s.repo.ConsentPatientClinic(ctx, tx, patientID, lock)
	if err != nil {
		return "", err
	}
	if !canSee(clinicID) {
		return "", domain.ErrNotFound
	}
	return clinicID, nil
}

// ConsentProto is c as the API shows it. revoked_at is when the consent stops applying (the
// revocation's effective time), not when the revocation was recorded.
func ConsentProto(c domain.Consent) *intakev1.Consent {
	out := &intakev1.Consent{
		ConsentId:         c.ID,
		PatientId:         c.PatientID,
		ClinicId:          c.ClinicID,
		Version:           int32(c.Version),
		Scopes:            scopeEnums(c.Scopes),
		Channels:          channelEnums(c.Channels),
		ConfidentialEmail: c.ConfidentialEmail,
		ConfidentialPhone: c.ConfidentialPhone,
		QuietHours:        quietHoursProto(c.QuietHours),
		Language:          c.Language,
		EffectiveFrom:     timestamppb.New(c.EffectiveFrom),
		ExpiresAt:         consentTimestamp(c.ExpiresAt),
		Status:            consentStatuses[c.Status],
		RevokedAt:         consentTimestamp(c.RevocationEffectiveAt),
		RevocationReason:  c.RevocationReason,
		RecordedBy:        c.RecordedBy,
		CreatedAt:         timestamppb.New(c.CreatedAt),
	}
	for _, r := range c.NamedRecipients {
		out.NamedRecipients = append(out.NamedRecipients, &intakev1.NamedRecipient{Name: r.Name, Relationship: r.Relationship})
	}
	return out
}

// Codes of the API's consent enums (stored as these text codes).
var (
	scopeCodes = map[intakev1.ConsentScope]string{
		intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT:              domain.ScopeTreatment,
		intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT:                domain.ScopePayment,
		intakev1.ConsentScope_CONSENT_SCOPE_HEALTH_CARE_OPERATIONS: domain.ScopeOperations,
		intakev1.ConsentScope_CONSENT_SCOPE_NAMED_RECIPIENTS:       domain.ScopeNamedRecipients,
	}
	channelCodes = map[intakev1.Channel]string{
		intakev1.Channel_CHANNEL_EMAIL: domain.ChannelEmail,
		intakev1.Channel_CHANNEL_SMS:   domain.ChannelSMS,
	}
	consentStatuses = map[string]intakev1.ConsentStatus{
		domain.ConsentActive:     intakev1.ConsentStatus_CONSENT_STATUS_ACTIVE,
		domain.ConsentSuperseded: intakev1.ConsentStatus_CONSENT_STATUS_SUPERSEDED,
		domain.ConsentRevoked:    intakev1.ConsentStatus_CONSENT_STATUS_REVOKED,
	}
)

// ScopeCodes are the codes of scopes; an undefined value becomes "" (which the domain refuses).
func ScopeCodes(scopes []intakev1.ConsentScope) []string { return consentEnumCodes(scopeCodes, scopes) }

// ChannelCodes are the codes of channels; an undefined value becomes "".
func ChannelCodes(channels []intakev1.Channel) []string {
	return consentEnumCodes(channelCodes, channels)
}

func scopeEnums(codes []string) []intakev1.ConsentScope { return consentCodeEnums(scopeCodes, codes) }

func channelEnums(codes []string) []intakev1.Channel { return consentCodeEnums(channelCodes, codes) }

func consentEnumCodes[E comparable](table map[E]string, in []E) []string {
	out := make([]string, len(in))
	for i, e := range in {
		out[i] = table[e]
	}
	return out
}

func consentCodeEnums[E comparable](table map[E]string, codes []string) []E {
	out := make([]E, 0, len(codes))
	for _, code := range codes {
		out = append(out, consentCodeEnum(table, code))
	}
	return out
}

// consentCodeEnum is the enum value whose code is code (the zero value, i.e. UNSPECIFIED, if none).
func consentCodeEnum[E comparable](table map[E]string, code string) E {
	for e, c := range table {
		if c == code {
			return e
		}
	}
	var zero E
	return zero
}

func quietHoursProto(q domain.QuietHours) *intakev1.QuietHours {
	if q.IsZero() {
		return nil
	}
	return &intakev1.QuietHours{Start: q.Start, End: q.End}
}

func consentTimestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
