package rpc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"connectrpc.com/connect"
)

// A call that ran out of time is deadline_exceeded (a client may retry with a longer one);
// one its caller cancelled is canceled.
func TestContextErrorsKeepTheirCode(t *testing.T) {
	s := NewServer(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	for _, tc := range []struct {
		err  error
		want connect.Code
	}{
		{fmt.Errorf("query: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded},
		{fmt.Errorf("query: %w", context.Canceled), connect.CodeCanceled},
	} {
		if got := connect.CodeOf(s.fail(ctx, "enrollment", tc.err)); got != tc.want {
			t.Errorf("enrollmentError(%v) = %s, want %s", tc.err, got, tc.want)
		}
		if got := connect.CodeOf(s.fail(ctx, "track", tc.err)); got != tc.want {
			t.Errorf("configError(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
