// Package asam holds the ASAM Criteria as versioned data (the levels of care of each edition)
// and the documented rule set that recommends a level of care from an assessment. It is pure:
// no storage, no clock. See docs/intake.md for the rules in plain words.
package asam

// Current is the edition new assessments use when none is named.
const Current = "asam-3"

// Population selects adult or adolescent criteria.
type Population int

const (
	Adult Population = iota + 1
	Adolescent
)

// Withdrawal is the withdrawal-management status at assessment.
type Withdrawal int

const (
	NoDetoxNeeded Withdrawal = iota + 1
	DetoxCompleted
	DetoxNeeded
)

// Level is one level of care of an edition.
type Level struct {
	Code string // e.g. "2.1"
	Name string // e.g. "Intensive outpatient"
}

// Input is what the rules read from an assessment.
type Input struct {
	Population Population
	// Ratings[i] is dimension i+1's risk rating, 0 (none) to 4 (severe).
	Ratings     [6]int
	Withdrawal  Withdrawal
	CoOccurring []string // condition codes, e.g. "depression"; empty when none
}

// Recommendation is the rule set's answer: a level code of the edition and the reasons, in
// plain words a clinician can read (no patient data).
type Recommendation struct {
	Level   string
	Reasons []string
}
