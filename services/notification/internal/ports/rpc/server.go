// Package rpc serves NotificationService.
package rpc

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/rpc"
	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/notification/v1/notificationv1connect"
	"github.com/trellis-health/trellis/services/notification/internal/app"
)

// Roles that call notification.
const (
	RoleClinician         = "clinician"
	RoleIntakeCoordinator = "intake_coordinator"
	RoleAdmin             = "admin"
	RoleOperator          = "operator"
)

// Policy is who may call what; the clinic is checked per call by the application (per
// patient for the history and the preferences).
var Policy = rpc.Policy{
	notificationv1connect.NotificationServiceListMessagesProcedure:      {RoleClinician, RoleIntakeCoordinator, RoleAdmin},
	notificationv1connect.NotificationServiceGetPreferencesProcedure:    {RoleClinician, RoleIntakeCoordinator, RoleAdmin},
	notificationv1connect.NotificationServiceSaveTemplateProcedure:      {RoleAdmin, RoleOperator},
	notificationv1connect.NotificationServiceListTemplatesProcedure:     {RoleAdmin, RoleOperator},
	notificationv1connect.NotificationServicePreviewTemplateProcedure:   {RoleAdmin, RoleOperator},
	notificationv1connect.NotificationServiceSetClinicSettingsProcedure: {RoleAdmin, RoleOperator},
	notificationv1connect.NotificationServiceGetClinicSettingsProcedure: {RoleAdmin, RoleOperator},
}

// Server implements notificationv1connect.NotificationServiceHandler. Authentication, the
// role policy and request validation run before it (pkg/rpc interceptors). Without Content,
// only ListMessages answers (from App); the rest are unimplemented.
type Server struct {
	notificationv1connect.UnimplementedNotificationServiceHandler
	App     *app.App
	Content *app.Content
	Log     *slog.Logger
}

var _ notificationv1connect.NotificationServiceHandler = Server{}

// appError maps the application's errors to Connect codes. Messages never carry values: an
// input error names each field and rule; anything unexpected is logged with op and answered
// "internal error".
func (s Server) appError(ctx context.Context, op string, err error) error {
	var ie *app.InputError
	switch {
	case errors.As(err, &ie):
		vs := make([]rpc.FieldViolation, len(ie.Problems))
		for i, p := range ie.Problems {
			vs[i] = rpc.FieldViolation{Field: p.Field, Rule: p.Rule, Msg: p.Msg}
		}
		return rpc.InvalidArgument(vs...)
	case errors.Is(err, app.ErrPermissionDenied):
		return connect.NewError(connect.CodePermissionDenied, errors.New("you may not act on this clinic"))
	case errors.Is(err, app.ErrPatientNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("patient not found"))
	default:
		if s.Log != nil {
			s.Log.ErrorContext(ctx, op+" failed", "error", err)
		}
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
}

func (s Server) unimplemented(proc string) error {
	return connect.NewError(connect.CodeUnimplemented, errors.New(proc+" is not enabled"))
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil || t.IsZero() {
		return nil
	}
	return timestamppb.New(*t)
}

// ListMessages implements NotificationService.ListMessages.
func (s Server) ListMessages(ctx context.Context, req *connect.Request[notificationv1.ListMessagesRequest]) (*connect.Response[notificationv1.ListMessagesResponse], error) {
	var entries []app.HistoryEntry
	if s.Content != nil {
		var err error
		if entries, err = s.Content.History(ctx, req.Msg.GetPatientId()); err != nil {
			return nil, s.appError(ctx, "list messages", err)
		}
	} else {
		msgs, err := s.App.ListMessages(ctx, req.Msg.GetPatientId())
		if err != nil {
			return nil, s.appError(ctx, "list messages", err)
		}
		for _, m := range msgs {
			entries = append(entries, app.HistoryEntry{Message: m})
		}
	}
	out := &notificationv1.ListMessagesResponse{Messages: make([]*notificationv1.Message, 0, len(entries))}
	for _, h := range entries {
		m := h.Message
		out.Messages = append(out.Messages, &notificationv1.Message{MessageId: m.ID, PatientId: m.PatientID,
			Kind: m.Kind, Channel: m.Channel, Status: m.Status, SentAt: ts(m.SentAt), Audience: m.Audience,
			Team: m.Team, StatusReason: m.StatusReason, DueAt: ts(&m.DueAt), DeliveredAt: ts(m.DeliveredAt),
			CreatedAt: ts(&m.CreatedAt), Attempts: int32(m.Attempts), LastErrorCode: m.LastErrorCode,
			TemplateVersion: int32(h.TemplateVersion), Locale: h.Locale})
	}
	return connect.NewResponse(out), nil
}
