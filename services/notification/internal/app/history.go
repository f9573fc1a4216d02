package app

import (
	"context"
	"fmt"

	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// HistoryEntry is one message of a patient's history: what, when and how it went (the
// template version and locale once sent), never its text, payload or address.
type HistoryEntry struct {
	domain.Message
	TemplateVersion int
	Locale          string
}

// History returns a patient's messages that the caller's clinics allow, newest first. A
// patient of a clinic the caller may not see looks exactly like an unknown patient (no
// messages).
func (c *Content) History(ctx context.Context, patientID string) ([]HistoryEntry, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	all, err := c.repo.MessageHistory(ctx, patientID)
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	visible := make([]HistoryEntry, 0, len(all))
	for _, m := range all {
		if p.CanSeeClinic(m.ClinicID) {
			visible = append(visible, m)
		}
	}
	return visible, nil
}
