package domain

import (
	"fmt"
	"time"
)

// StatementDueDays: a statement is due this many days after it is issued.
const StatementDueDays = 30

// StatementDueDate is the due date ("YYYY-MM-DD") of a statement issued at issued (UTC date).
func StatementDueDate(issued time.Time) string {
	return issued.UTC().AddDate(0, 0, StatementDueDays).Format(time.DateOnly)
}

// Work item statuses and appeal statuses.
const (
	WorkOpen     = "open"
	WorkResolved = "resolved"
	AppealNone   = "none"
	AppealFiled  = "appealed"
	AppealWon    = "won"
	AppealLost   = "lost"
)

// UpdateWorkItem applies a status and appeal change (empty: unchanged) to w. Status moves
// freely between open and resolved. Appeals are for denials only: none -> appealed ->
// won or lost; won and lost are final. A refused move is an ErrConflict naming the field.
func UpdateWorkItem(w WorkItem, status, appeal string) (WorkItem, bool, error) {
	changed := false
	if status != "" && status != w.Status {
		if status != WorkOpen && status != WorkResolved {
			return w, false, fmt.Errorf("%w: status: must be open or resolved", ErrInvalid)
		}
		w.Status, changed = status, true
	}
	if appeal != "" && appeal != w.AppealStatus {
		if w.Queue != QueueDenial {
			return w, false, fmt.Errorf("%w: appeal_status: only denials are appealed", ErrConflict)
		}
		ok := (w.AppealStatus == AppealNone && appeal == AppealFiled) ||
			(w.AppealStatus == AppealFiled && (appeal == AppealWon || appeal == AppealLost))
		if !ok {
			return w, false, fmt.Errorf("%w: appeal_status: cannot go from %s to %s", ErrConflict, w.AppealStatus, appeal)
		}
		w.AppealStatus, changed = appeal, true
	}
	return w, changed, nil
}
