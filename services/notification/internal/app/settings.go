package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// ClinicSettingsRecord is a clinic's notification settings as stored (clinic_settings).
type ClinicSettingsRecord struct {
	ClinicID        string
	ReminderOffsets []int // minutes before an appointment
	ContactPhone    string
	CareTeamEmail   string
	BillingEmail    string
	UpdatedAt       time.Time
}

// PreferencesView is what staff may see of a patient's communication preferences: whether a
// confidential address or number is on file, never its value.
type PreferencesView struct {
	PatientID, ClinicID                        string
	ConsentVersion                             int
	Channels                                   []string
	HasConfidentialEmail, HasConfidentialPhone bool
	QuietStart, QuietEnd, TimeZone, Language   string
	Revoked, SMSOptedOut                       bool
	UpdatedAt                                  time.Time
}

// GetClinicSettings returns the clinic's settings, or the defaults (configured false) when it
// saved none.
func (c *Content) GetClinicSettings(ctx context.Context, clinicID string) (s ClinicSettingsRecord, configured bool, err error) {
	p, err := principal(ctx)
	if err != nil {
		return ClinicSettingsRecord{}, false, err
	}
	if !p.CanSeeClinic(clinicID) {
		return ClinicSettingsRecord{}, false, ErrPermissionDenied
	}
	s, configured, err = c.repo.ClinicSettings(ctx, clinicID)
	if err != nil {
		return ClinicSettingsRecord{}, false, fmt.Errorf("read clinic settings: %w", err)
	}
	if !configured {
		s = ClinicSettingsRecord{ClinicID: clinicID, ReminderOffsets: slices.Clone(domain.DefaultReminderOffsets)}
	}
	return s, configured, nil
}

// SetClinicSettings checks and stores the clinic's settings (replacing them). No reminder
// offsets means the defaults. Invalid settings are an *InputError and change nothing.
func (c *Content) SetClinicSettings(ctx context.Context, s ClinicSettingsRecord) (ClinicSettingsRecord, error) {
	p, err := principal(ctx)
	if err != nil {
		return ClinicSettingsRecord{}, err
	}
	if !p.CanSeeClinic(s.ClinicID) {
		return ClinicSettingsRecord{}, ErrPermissionDenied
	}
	if ps := domain.CheckClinicSettings(s.ReminderOffsets, s.ContactPhone, s.CareTeamEmail, s.BillingEmail); len(ps) > 0 {
		return ClinicSettingsRecord{}, &InputError{Problems: ps}
	}
	if len(s.ReminderOffsets) == 0 {
		s.ReminderOffsets = slices.Clone(domain.DefaultReminderOffsets)
	}
	s.UpdatedAt = c.now().UTC().Truncate(time.Microsecond)
	if err := c.repo.SaveClinicSettings(ctx, s); err != nil {
		return ClinicSettingsRecord{}, fmt.Errorf("save clinic settings: %w", err)
	}
	c.log.InfoContext(ctx, "clinic settings saved", "clinic_id", s.ClinicID, "reminder_offsets", len(s.ReminderOffsets))
	return s, nil
}

// GetPreferences returns the patient's preferences copy. A patient without one, or of a
// clinic the caller may not see, is ErrPatientNotFound.
func (c *Content) GetPreferences(ctx context.Context, patientID string) (PreferencesView, error) {
	p, err := principal(ctx)
	if err != nil {
		return PreferencesView{}, err
	}
	v, ok, err := c.repo.PreferencesView(ctx, patientID)
	if err != nil {
		return PreferencesView{}, fmt.Errorf("read preferences: %w", err)
	}
	if !ok || !p.CanSeeClinic(v.ClinicID) {
		return PreferencesView{}, ErrPatientNotFound
	}
	return v, nil
}
