package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

// StoredTemplate is a template with where it comes from: a clinic's (ClinicID set), the
// network default, or the built-in text (Version 0).
type StoredTemplate struct {
	domain.Template
	ClinicID  string // "" for the network default and the built-in text
	Version   int
	Source    string // domain.SourceClinic, SourceNetwork or SourceBuiltin
	CreatedBy string
	CreatedAt time.Time
}

// ContentRepository is the storage of the templates, the clinic settings, and what the API
// reads of the preferences and the message history (adapters/postgres).
type ContentRepository interface {
	// NewestTemplates returns the newest stored version of kind on channel per owner (the
	// clinic, the network) and locale among locales. clinicID "" reads the network's only.
	NewestTemplates(ctx context.Context, clinicID, kind, channel string, locales []string) ([]StoredTemplate, error)
	// AllNewestTemplates returns the newest stored version of every kind, channel and locale
	// of the clinic ("" none) and of the network.
	AllNewestTemplates(ctx context.Context, clinicID string) ([]StoredTemplate, error)
	// SaveTemplate stores t (with id) as the next version of its owner, kind, channel and
	// locale, and returns that version.
	SaveTemplate(ctx context.Context, id string, t StoredTemplate) (int, error)
	// ClinicSettings returns the clinic's settings (false when it saved none).
	ClinicSettings(ctx context.Context, clinicID string) (ClinicSettingsRecord, bool, error)
	// SaveClinicSettings creates or replaces the clinic's settings.
	SaveClinicSettings(ctx context.Context, s ClinicSettingsRecord) error
	// PreferencesView returns the patient's preferences without addresses (false when none).
	PreferencesView(ctx context.Context, patientID string) (PreferencesView, bool, error)
	// MessageHistory returns the patient's messages, newest first.
	MessageHistory(ctx context.Context, patientID string) ([]HistoryEntry, error)
}

// InputError is a request the content API refuses: every problem names the field and rule.
// Nothing was changed.
type InputError struct{ Problems []domain.Problem }

func (e *InputError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// ErrPatientNotFound means the patient is unknown, or of a clinic the caller may not see (the
// two look alike: being a patient of a clinic is itself protected).
var ErrPatientNotFound = errors.New("patient not found")

// Content renders messages (it is the dispatcher's Renderer) and serves the templates, clinic
// settings, preferences and history API.
type Content struct {
	repo  ContentRepository
	check *domain.Checker
	log   *slog.Logger
	now   func() time.Time
}

var _ Renderer = (*Content)(nil)

// NewContent returns the content use cases over repo, checking templates with check; now is
// the clock (time.Now when nil).
func NewContent(repo ContentRepository, check *domain.Checker, log *slog.Logger, now func() time.Time) *Content {
	if now == nil {
		now = time.Now
	}
	return &Content{repo: repo, check: check, log: log, now: now}
}

// Checker returns the template check in use.
func (c *Content) Checker() *domain.Checker { return c.check }

// effective returns the template in effect for kind on channel at the clinic in locale: the
// clinic's newest version, else the network's newest, else the built-in text; then the same
// in English. ErrNoTemplate when there is none (an unknown kind, or a channel the kind is
// not sent on).
func (c *Content) effective(ctx context.Context, clinicID, kind, channel, locale string) (StoredTemplate, error) {
	locales := []string{domain.NormalizeLocale(locale)}
	if locales[0] != domain.LocaleEnglish {
		locales = append(locales, domain.LocaleEnglish)
	}
	stored, err := c.repo.NewestTemplates(ctx, clinicID, kind, channel, locales)
	if err != nil {
		return StoredTemplate{}, fmt.Errorf("read templates: %w", err)
	}
	for _, loc := range locales {
		for _, source := range []string{domain.SourceClinic, domain.SourceNetwork} {
			for _, t := range stored {
				if t.Locale == loc && t.Source == source {
					return t, nil
				}
			}
		}
		if t, ok := domain.BuiltinTemplate(kind, channel, loc); ok {
			return StoredTemplate{Template: t, Source: domain.SourceBuiltin}, nil
		}
	}
	return StoredTemplate{}, fmt.Errorf("%w: %s on %s", ErrNoTemplate, kind, channel)
}

// Render implements Renderer: the template in effect for the message's clinic, kind, channel
// and locale, rendered with in; it returns the template's version (0: built-in). A template
// that cannot render the message (a payload key it lacks, a text without the clinic's
// number) is an ErrNoTemplate error: retrying would not help.
func (c *Content) Render(ctx context.Context, in domain.RenderInput) (domain.Rendered, int, error) {
	t, err := c.effective(ctx, in.ClinicID, in.Kind, in.Channel, in.Locale)
	if err != nil {
		return domain.Rendered{}, 0, err
	}
	r, err := domain.Render(t.Template, in)
	if err != nil {
		return domain.Rendered{}, 0, fmt.Errorf("%w: %s %s/%s/%s v%d: %w", ErrNoTemplate, t.Source, t.Kind, t.Channel, t.Locale, t.Version, err)
	}
	return r, t.Version, nil
}

// principal returns the caller, or ErrPermissionDenied.
func principal(ctx context.Context) (*auth.Principal, error) {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, ErrPermissionDenied
	}
	return p, nil
}

// canManage reports whether p may change clinicID's templates or settings ("": the network's,
// which needs every clinic).
func canManage(p *auth.Principal, clinicID string) bool {
	if clinicID == "" {
		return slices.Contains(p.Clinics, auth.AllClinics)
	}
	return p.CanSeeClinic(clinicID)
}

// SaveTemplate checks t and stores it as the next version of the clinic's template (of the
// network default when clinicID is ""). A template the check rejects is an *InputError and
// nothing is stored.
func (c *Content) SaveTemplate(ctx context.Context, clinicID string, t domain.Template) (int, error) {
	p, err := principal(ctx)
	if err != nil {
		return 0, err
	}
	if !canManage(p, clinicID) {
		return 0, ErrPermissionDenied
	}
	if ps := c.check.Check(t); len(ps) > 0 {
		return 0, &InputError{Problems: ps}
	}
	st := StoredTemplate{Template: t, ClinicID: clinicID, CreatedBy: p.Subject, CreatedAt: c.now()}
	version, err := c.repo.SaveTemplate(ctx, bus.NewID(), st)
	if err != nil {
		return 0, fmt.Errorf("save template: %w", err)
	}
	c.log.InfoContext(ctx, "template saved", "clinic_id", clinicID, "kind", t.Kind, "channel", t.Channel,
		"locale", t.Locale, "version", version)
	return version, nil
}

// ListTemplates returns the template in effect at the clinic (at the network when clinicID is
// "") for every kind, channel and locale: the built-in locales, and any other locale a
// template was saved in.
func (c *Content) ListTemplates(ctx context.Context, clinicID string) ([]StoredTemplate, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if clinicID != "" && !p.CanSeeClinic(clinicID) {
		return nil, ErrPermissionDenied
	}
	stored, err := c.repo.AllNewestTemplates(ctx, clinicID)
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	type key struct{ kind, channel, locale string }
	effective := map[key]StoredTemplate{}
	var order []key
	for _, b := range domain.BuiltinTemplates() {
		k := key{b.Kind, b.Channel, b.Locale}
		effective[k] = StoredTemplate{Template: b, Source: domain.SourceBuiltin}
		order = append(order, k)
	}
	rank := map[string]int{domain.SourceBuiltin: 0, domain.SourceNetwork: 1, domain.SourceClinic: 2}
	for _, t := range stored {
		k := key{t.Kind, t.Channel, t.Locale}
		cur, ok := effective[k]
		if !ok {
			order = append(order, k)
		}
		if !ok || rank[t.Source] > rank[cur.Source] {
			effective[k] = t
		}
	}
	out := make([]StoredTemplate, len(order))
	for i, k := range order {
		out[i] = effective[k]
	}
	return out, nil
}

// Preview is a template rendered with sample data, with the check's problems.
type Preview struct {
	Rendered       domain.Rendered
	CharacterCount int
	Problems       []domain.Problem
	Template       StoredTemplate // Source "" for a template given in the request
}

// PreviewTemplate renders t with the sample data of its kind, or, when t.Body is empty, the
// template in effect at the clinic ("": the network) for t's kind, channel and locale. A
// template that does not render is not an error: its problems say why.
func (c *Content) PreviewTemplate(ctx context.Context, clinicID string, t domain.Template) (Preview, error) {
	p, err := principal(ctx)
	if err != nil {
		return Preview{}, err
	}
	if clinicID != "" && !p.CanSeeClinic(clinicID) {
		return Preview{}, ErrPermissionDenied
	}
	st := StoredTemplate{Template: t}
	if strings.TrimSpace(t.Body) == "" {
		if st, err = c.effective(ctx, clinicID, t.Kind, t.Channel, t.Locale); err != nil {
			if errors.Is(err, ErrNoTemplate) {
				return Preview{Problems: c.check.Check(t)}, nil
			}
			return Preview{}, err
		}
	}
	out := Preview{Template: st, Problems: c.check.Check(st.Template)}
	in := domain.SampleInput(st.Kind, st.Channel, st.Locale)
	if r, err := domain.Render(st.Template, in); err == nil {
		out.Rendered, out.CharacterCount = r, utf8.RuneCountInString(r.Body)
	}
	return out, nil
}
