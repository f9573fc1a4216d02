// Package x12 reads and writes the ASC X12 5010 transactions billing exchanges with payers:
// it writes 837I (005010X223A2) and 837P (005010X222A1) claim files and reads 835 (005010X221A1)
// remittance advice. It is pure: no database, no clock (times are passed in).
//
// Reading is tolerant (with or without the ISA/GS envelope, any separators ISA declares,
// segment terminators with or without newlines) and checking is strict: every broken rule is
// reported as a Deviation, and only a file that cannot be read at all is an error.
package x12

import "time"

// Segment is one X12 segment: its id and its elements (Elements[0] is the first element after
// the id, so "CLP*A*1" has ID "CLP" and Elements ["A", "1"]). Position is the 1-based ordinal
// of the segment in the file.
type Segment struct {
	ID       string
	Elements []string
	Position int
}

// Delimiters are the separators of a file (declared by ISA, or the defaults * : ^ ~).
type Delimiters struct {
	Element, Component, Repetition, Segment byte
}

// ERA is a parsed 835 file (electronic remittance advice): its transactions, and every
// deviation from the rules found while reading and balancing it.
type ERA struct {
	Transactions []Transaction
	Deviations   []Deviation
}

// Transaction is one 835 transaction set (ST..SE): one payment (BPR) from one payer.
type Transaction struct {
	ControlNumber string // ST02
	// BPR02, the total actually paid, in cents; BPR03 C (credit) or D (debit).
	TotalPaidCents int64
	CreditDebit    string
	PaymentMethod  string // BPR04, e.g. ACH, CHK, NON
	PaymentDate    string // BPR16, YYYYMMDD
	TraceNumber    string // TRN02 (check or EFT number)
	PayerName      string // N1*PR
	PayerID        string // N1*PR identifier, or REF*2U, or TRN03
	PayeeName      string // N1*PE
	PayeeID        string // N1*PE identifier (NPI when XX)
	Claims         []ClaimPayment
	// PLB: provider-level adjustments (positive reduces the payment).
	ProviderAdjustments []ProviderAdjustment
}

// ClaimPayment is one CLP loop (2100): the payer's decision on one claim.
type ClaimPayment struct {
	PatientControlNumber       string       // CLP01: the CLM01 billing sent
	StatusCode                 string       // CLP02: 1/2/3 processed, 4 denied, 19/20/21 forwarded, 22 reversal
	ChargedCents               int64        // CLP03
	PaidCents                  int64        // CLP04
	PatientResponsibilityCents int64        // CLP05
	PayerClaimNumber           string       // CLP07
	Adjustments                []Adjustment // claim-level CAS
	Lines                      []ServiceLinePayment
	Position                   int // of the CLP segment
}

// ServiceLinePayment is one SVC loop (2110).
type ServiceLinePayment struct {
	ProcedureQualifier string // SVC01-1, e.g. HC, NU (revenue code)
	ProcedureCode      string // SVC01-2
	Modifiers          []string
	ChargedCents       int64  // SVC02
	PaidCents          int64  // SVC03
	RevenueCode        string // SVC04
	Units              int    // SVC05, 1 when absent
	ServiceDate        string // DTM*472 (or *150), YYYYMMDD
	LineControlNumber  string // REF*6R: the REF*6R billing sent on the line
	Adjustments        []Adjustment
	Remarks            []string // LQ*HE remark codes (RARC)
	Position           int      // of the SVC segment
}

// Adjustment is one amount of a CAS segment: group (CO, PR, OA, PI, CR) and CARC reason.
type Adjustment struct {
	Group       string
	Reason      string
	AmountCents int64
	Quantity    int
}

// ProviderAdjustment is one reason/amount pair of a PLB segment.
type ProviderAdjustment struct {
	ProviderID   string
	FiscalPeriod string
	Reason       string // PLB03-1, e.g. WO, L6, 90
	Reference    string // PLB03-2
	AmountCents  int64
}

// Deviation is a rule a file breaks: which rule, where, and the amounts (or counts) expected
// and found. Amounts are cents for balancing rules, counts for segment counts.
type Deviation struct {
	Rule     string `json:"rule"`    // e.g. "claim_balance", "se_segment_count"
	Segment  string `json:"segment"` // e.g. "CLP*ABC9001 (segment 12)"
	Expected int64  `json:"expected"`
	Actual   int64  `json:"actual"`
	Detail   string `json:"detail,omitempty"`
}

// Summary is what `billing era inspect` prints: counts, the sum of the BPR totals, and the
// deviations.
type Summary struct {
	Transactions   int         `json:"transactions"`
	Claims         int         `json:"claims"`
	ServiceLines   int         `json:"service_lines"`
	TotalPaidCents int64       `json:"total_paid_cents"`
	Deviations     []Deviation `json:"deviations"`
}

// ClaimKind selects the 837 implementation.
type ClaimKind int

const (
	// Institutional is 837I, 005010X223A2.
	Institutional ClaimKind = iota + 1
	// Professional is 837P, 005010X222A1.
	Professional
)

// Party names a submitter, receiver or payer: a name and an identifier.
type Party struct {
	Name string
	ID   string
	// Submitter only: PER contact name and phone.
	ContactName  string
	ContactPhone string
}

// Provider is the billing provider (loop 2010AA).
type Provider struct {
	Name, NPI, TaxID, Taxonomy    string
	AddressLine, City, State, Zip string
}

// ClaimFile is the input of Write837: one interchange, one functional group, one transaction
// with one billing provider and one payer.
type ClaimFile struct {
	Kind ClaimKind
	// ISA13/GS06/ST02 numbers (ISA13 must be unique per sender: billing draws it from a sequence).
	InterchangeControlNumber int64
	// ISA15: "P" production or "T" test.
	Usage           string
	CreatedAt       time.Time
	Submitter       Party
	Receiver        Party
	BillingProvider Provider
	Payer           Party
	// SBR09 claim filing indicator of the payer: MC Medicaid, CI commercial, MB Medicare Part B,
	// MA Medicare Part A, BL Blue Cross Blue Shield, HM HMO, ... (required).
	ClaimFilingIndicator string
	Claims               []Claim
}

// Claim is one CLM loop with its subscriber (the patient is the subscriber: relationship 18).
type Claim struct {
	ControlNumber string // CLM01
	FrequencyCode string // CLM05-3: 1 original, 7 replacement, 8 void
	// For 7/8: the original claim's payer claim number or control number (REF*F8).
	OriginalReference string
	TotalCents        int64
	// Subscriber (loop 2010BA).
	MemberID, GroupNumber              string
	GivenName, FamilyName, DateOfBirth string // DateOfBirth YYYY-MM-DD
	// ICD-10-CM codes without the dot, principal first.
	Diagnoses []string
	// REF*G1 prior authorization number, if any.
	PriorAuthorization string
	// CLM05-1: the place of service code on 837P (default "11", office) or the facility type
	// code, the first two digits of the bill type, on 837I (default "89", special facility).
	FacilityCode string
	// DMG03: F, M or U (default "U", unknown).
	Gender string
	// Subscriber address (N3/N4 of loop 2010BA), written when AddressLine is set.
	AddressLine, City, State, Zip string
	// 837I only, CL1: CL102 point of origin (optional) and CL103 patient status (default "30",
	// still a patient, as on interim bills of an ongoing program).
	PointOfOrigin, PatientStatus string
	Lines                        []Line
}

// Line is one service line (LX + SV1 for 837P, LX + SV2 for 837I).
type Line struct {
	ControlNumber string // REF*6R, echoed by the 835
	ProcedureCode string // HCPCS/CPT
	RevenueCode   string // 837I only
	Modifiers     []string
	Units         int
	ChargeCents   int64
	ServiceDate   string // YYYY-MM-DD
}
