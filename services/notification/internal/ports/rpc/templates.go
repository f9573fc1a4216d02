package rpc

import (
	"context"

	"connectrpc.com/connect"

	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/notification/v1/notificationv1connect"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
)

var sources = map[string]notificationv1.TemplateSource{
	domain.SourceBuiltin: notificationv1.TemplateSource_TEMPLATE_SOURCE_BUILTIN,
	domain.SourceNetwork: notificationv1.TemplateSource_TEMPLATE_SOURCE_NETWORK,
	domain.SourceClinic:  notificationv1.TemplateSource_TEMPLATE_SOURCE_CLINIC,
}

// SaveTemplate implements NotificationService.SaveTemplate.
func (s Server) SaveTemplate(ctx context.Context, req *connect.Request[notificationv1.SaveTemplateRequest]) (*connect.Response[notificationv1.SaveTemplateResponse], error) {
	if s.Content == nil {
		return nil, s.unimplemented(notificationv1connect.NotificationServiceSaveTemplateProcedure)
	}
	r := req.Msg
	v, err := s.Content.SaveTemplate(ctx, r.GetClinicId(), domain.Template{Kind: r.GetKind(), Channel: r.GetChannel(),
		Locale: r.GetLocale(), Subject: r.GetSubject(), Body: r.GetBody()})
	if err != nil {
		return nil, s.appError(ctx, "save template", err)
	}
	return connect.NewResponse(&notificationv1.SaveTemplateResponse{Version: int32(v)}), nil
}

// ListTemplates implements NotificationService.ListTemplates.
func (s Server) ListTemplates(ctx context.Context, req *connect.Request[notificationv1.ListTemplatesRequest]) (*connect.Response[notificationv1.ListTemplatesResponse], error) {
	if s.Content == nil {
		return nil, s.unimplemented(notificationv1connect.NotificationServiceListTemplatesProcedure)
	}
	tpls, err := s.Content.ListTemplates(ctx, req.Msg.GetClinicId())
	if err != nil {
		return nil, s.appError(ctx, "list templates", err)
	}
	out := &notificationv1.ListTemplatesResponse{Templates: make([]*notificationv1.Template, 0, len(tpls))}
	for _, t := range tpls {
		out.Templates = append(out.Templates, &notificationv1.Template{Kind: t.Kind, Channel: t.Channel,
			Locale: t.Locale, Subject: t.Subject, Body: t.Body, Version: int32(t.Version), Source: sources[t.Source],
			CreatedBy: t.CreatedBy, CreatedAt: ts(&t.CreatedAt)})
	}
	return connect.NewResponse(out), nil
}

// PreviewTemplate implements NotificationService.PreviewTemplate.
func (s Server) PreviewTemplate(ctx context.Context, req *connect.Request[notificationv1.PreviewTemplateRequest]) (*connect.Response[notificationv1.PreviewTemplateResponse], error) {
	if s.Content == nil {
		return nil, s.unimplemented(notificationv1connect.NotificationServicePreviewTemplateProcedure)
	}
	r := req.Msg
	p, err := s.Content.PreviewTemplate(ctx, r.GetClinicId(), domain.Template{Kind: r.GetKind(), Channel: r.GetChannel(),
		Locale: r.GetLocale(), Subject: r.GetSubject(), Body: r.GetBody()})
	if err != nil {
		return nil, s.appError(ctx, "preview template", err)
	}
	out := &notificationv1.PreviewTemplateResponse{Subject: p.Rendered.Subject, Body: p.Rendered.Body,
		CharacterCount: int32(p.CharacterCount), Version: int32(p.Template.Version), Source: sources[p.Template.Source]}
	for _, pr := range p.Problems {
		out.Problems = append(out.Problems, &notificationv1.TemplateProblem{Field: pr.Field, Rule: pr.Rule, Message: pr.Msg})
	}
	return connect.NewResponse(out), nil
}

// GetPreferences implements NotificationService.GetPreferences.
func (s Server) GetPreferences(ctx context.Context, req *connect.Request[notificationv1.GetPreferencesRequest]) (*connect.Response[notificationv1.GetPreferencesResponse], error) {
	if s.Content == nil {
		return nil, s.unimplemented(notificationv1connect.NotificationServiceGetPreferencesProcedure)
	}
	v, err := s.Content.GetPreferences(ctx, req.Msg.GetPatientId())
	if err != nil {
		return nil, s.appError(ctx, "get preferences", err)
	}
	return connect.NewResponse(&notificationv1.GetPreferencesResponse{Preferences: &notificationv1.Preferences{
		PatientId: v.PatientID, ClinicId: v.ClinicID, ConsentVersion: int32(v.ConsentVersion), Channels: v.Channels,
		HasConfidentialEmail: v.HasConfidentialEmail, HasConfidentialPhone: v.HasConfidentialPhone,
		QuietStart: v.QuietStart, QuietEnd: v.QuietEnd, TimeZone: v.TimeZone, Language: v.Language,
		Revoked: v.Revoked, SmsOptedOut: v.SMSOptedOut, UpdatedAt: ts(&v.UpdatedAt),
	}}), nil
}

// SetClinicSettings implements NotificationService.SetClinicSettings.
func (s Server) SetClinicSettings(ctx context.Context, req *connect.Request[notificationv1.SetClinicSettingsRequest]) (*connect.Response[notificationv1.SetClinicSettingsResponse], error) {
	if s.Content == nil {
		return nil, s.unimplemented(notificationv1connect.NotificationServiceSetClinicSettingsProcedure)
	}
	in := req.Msg.GetSettings()
	rec := app.ClinicSettingsRecord{ClinicID: in.GetClinicId(), ContactPhone: in.GetContactPhone(),
		CareTeamEmail: in.GetCareTeamEmail(), BillingEmail: in.GetBillingEmail()}
	for _, o := range in.GetReminderOffsetsMinutes() {
		rec.ReminderOffsets = append(rec.ReminderOffsets, int(o))
	}
	saved, err := s.Content.SetClinicSettings(ctx, rec)
	if err != nil {
		return nil, s.appError(ctx, "set clinic settings", err)
	}
	return connect.NewResponse(&notificationv1.SetClinicSettingsResponse{Settings: settingsOut(saved)}), nil
}

// GetClinicSettings implements NotificationService.GetClinicSettings.
func (s Server) GetClinicSettings(ctx context.Context, req *connect.Request[notificationv1.GetClinicSettingsRequest]) (*connect.Response[notificationv1.GetClinicSettingsResponse], error) {
	if s.Content == nil {
		return nil, s.unimplemented(notificationv1connect.NotificationServiceGetClinicSettingsProcedure)
	}
	rec, configured, err := s.Content.GetClinicSettings(ctx, req.Msg.GetClinicId())
	if err != nil {
		return nil, s.appError(ctx, "get clinic settings", err)
	}
	return connect.NewResponse(&notificationv1.GetClinicSettingsResponse{Settings: settingsOut(rec), Configured: configured}), nil
}

func settingsOut(s app.ClinicSettingsRecord) *notificationv1.ClinicSettings {
	out := &notificationv1.ClinicSettings{ClinicId: s.ClinicID, ContactPhone: s.ContactPhone,
		CareTeamEmail: s.CareTeamEmail, BillingEmail: s.BillingEmail, UpdatedAt: ts(&s.UpdatedAt)}
	for _, o := range s.ReminderOffsets {
		out.ReminderOffsetsMinutes = append(out.ReminderOffsetsMinutes, int32(o))
	}
	return out
}
