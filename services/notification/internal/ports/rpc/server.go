// Package rpc serves NotificationService.
package rpc

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/notification/v1/notificationv1connect"
	"github.com/trellis-health/trellis/services/notification/internal/app"
)

// Policy is who may call what; the clinic is checked per patient by the application.
var Policy = map[string][]string{
	notificationv1connect.NotificationServiceListMessagesProcedure: {"clinician", "intake_coordinator", "admin"},
}

// Server implements notificationv1connect.NotificationServiceHandler.
type Server struct{ App *app.App }

var _ notificationv1connect.NotificationServiceHandler = Server{}

// ListMessages implements NotificationService.ListMessages.
func (s Server) ListMessages(ctx context.Context, req *connect.Request[notificationv1.ListMessagesRequest]) (*connect.Response[notificationv1.ListMessagesResponse], error) {
	msgs, err := s.App.ListMessages(ctx, req.Msg.GetPatientId())
	if errors.Is(err, app.ErrPermissionDenied) {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("you may not see this patient's clinic"))
	}
	if err != nil {
		return nil, err
	}
	out := &notificationv1.ListMessagesResponse{Messages: make([]*notificationv1.Message, 0, len(msgs))}
	for _, m := range msgs {
		pm := &notificationv1.Message{MessageId: m.ID, PatientId: m.PatientID, Kind: m.Kind,
			Channel: m.Channel, Status: m.Status}
		if m.SentAt != nil {
			pm.SentAt = timestamppb.New(*m.SentAt)
		}
		out.Messages = append(out.Messages, pm)
	}
	return connect.NewResponse(out), nil
}
