package analysis

import "time"

// Result is the report's tables rebuilt from data. Lists are never null in
// the JSON; times are UTC (RFC 3339 in JSON) and zero times are omitted.
type Result struct {
	Summary Summary `json:"summary"`
	// Intermediates is table 1: every CA certificate (other than a known
	// root) in a chain that leads to the interception PKI, ordered by
	// NotBefore.
	Intermediates []IntermediateRow `json:"intermediates"`
	// Networks is table 2, ordered by AS number.
	Networks []NetworkRow `json:"networks"`
	// Domains is table 3, ordered by name.
	Domains []DomainRow `json:"domains"`
	// Gaps is table 4: the periods when no intermediate seen was valid.
	Gaps []Gap `json:"gaps"`
	// Sweep is what the records of `kzprobe sweep` say, which the tables
	// above leave out (they count measurements of sites); absent when
	// none was read.
	Sweep *SweepResult `json:"sni_sweep,omitempty"`
	// Where is what the records of `kzprobe trace` say: where on the path
	// each target was answered, per network. Absent when none was read.
	Where *WhereResult `json:"where,omitempty"`
	// Files says what each input file held.
	Files []FileStats `json:"files"`
	// Warnings lists skipped lines and unreadable files, "file:line: why"
	// (the first Config.MaxWarnings; Summary.WarningsOmitted counts the
	// rest).
	Warnings []Warning `json:"warnings"`
}

// Summary counts what the analysis read and found.
type Summary struct {
	Files           int `json:"files"`
	UnreadableFiles int `json:"unreadable_files"`
	TruncatedFiles  int `json:"truncated_files"`
	// BadLines counts lines (or documents) skipped as not a measurement.
	BadLines int `json:"bad_lines"`
	// Measurements counts the records analysed (inside Since/Until) but
	// the sweep's.
	Measurements int `json:"measurements"`
	// SweepMeasurements counts the records of `kzprobe sweep` (inside
	// Since/Until), in Result.Sweep and in no other table or count.
	SweepMeasurements int `json:"sweep_measurements,omitempty"`
	// TraceMeasurements counts the records of `kzprobe trace` (inside
	// Since/Until), in Result.Where only.
	TraceMeasurements int `json:"trace_measurements,omitempty"`
	// OutsideTimeWindow counts records skipped by Since/Until.
	OutsideTimeWindow int `json:"outside_time_window"`
	// Handshakes counts the handshakes that presented a chain, each judged.
	Handshakes int `json:"handshakes"`
	// ChainsJudged counts chain analyses run; CacheHits the handshakes
	// whose chain had been judged before.
	ChainsJudged int64 `json:"chains_judged"`
	CacheHits    int64 `json:"cache_hits"`
	// Intercepted counts measurements with at least one chain leading to
	// the interception PKI.
	Intercepted   int       `json:"intercepted"`
	First         time.Time `json:"first,omitzero"`
	Last          time.Time `json:"last,omitzero"`
	Intermediates int       `json:"intermediates"`
	// Networks counts the labelled networks (a known AS number) measured
	// from, InterceptedNetworks those with an intercepted measurement.
	// Records without an AS number (AS0: a run without a GeoIP database,
	// the lab) are not a network; Unlabelled counts them.
	Networks            int `json:"networks"`
	InterceptedNetworks int `json:"intercepted_networks"`
	// Unlabelled counts the measurements without an AS number (the
	// networks table's UnlabelledASN row), UnlabelledIntercepted those of
	// them intercepted.
	Unlabelled            int `json:"unlabelled"`
	UnlabelledIntercepted int `json:"unlabelled_intercepted"`
	Domains               int `json:"domains"`
	InterceptedDomains    int `json:"intercepted_domains"`
	// OutsideWindow counts sightings outside their intermediate's window.
	OutsideWindow int `json:"outside_window"`
	Gaps          int `json:"gaps"`
	// GapSightings counts sightings when no intermediate was valid.
	GapSightings    int `json:"gap_sightings"`
	WarningsOmitted int `json:"warnings_omitted"`
	// NotTabulated counts measurements that lost a row or a list entry
	// to the tables' bound (Config.MaxTableBytes); zero on real data.
	NotTabulated int `json:"not_tabulated,omitempty"`
}

// IntermediateRow is one row of the intermediates table, the report's
// columns plus what the data says about it.
type IntermediateRow struct {
	SHA1      string    `json:"sha1"`
	SHA256    string    `json:"sha256"`
	Serial    string    `json:"serial"` // decimal, as the report prints it
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// SignerRootSHA1 is the known root whose key verifies it, or
	// chain.SignerUnknown.
	SignerRootSHA1 string `json:"signer_root_sha1"`
	SignerRootName string `json:"signer_root_name"`
	// Known is true when it is one of the published intermediates.
	Known bool `json:"known"`
	// Evidence is the strongest evidence of the chains it was in.
	Evidence string `json:"evidence"`
	// EvidenceSource is chain.EvidenceRecorded when that evidence rests,
	// in every chain that gave it, on the signer a record kept of a
	// certificate it withheld (checked by the probe, not again); empty
	// when it was checked here.
	EvidenceSource string `json:"evidence_source,omitempty"`
	// FirstSeen and LastSeen are the first and last measurement times of
	// its sightings.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Sightings counts the handshakes whose chain held it; Measurements
	// the measurements (one measurement may hold several handshakes).
	Sightings    int `json:"sightings"`
	Measurements int `json:"measurements"`
	// OutsideWindow counts the sightings outside [NotBefore, NotAfter]:
	// interception went on with an expired (or not yet valid)
	// intermediate.
	OutsideWindow int `json:"outside_window"`
	// Networks are the ASNs and Domains the domains where it was seen.
	Networks []string `json:"networks"`
	Domains  []string `json:"domains"`
	// Days counts the sightings per UTC day, for the timeline.
	Days []DayCount `json:"-"`
}

// Window returns the validity window.
func (r *IntermediateRow) Window() Window { return Window{r.NotBefore, r.NotAfter} }

// DayCount is the sightings of one intermediate on one UTC day.
type DayCount struct {
	Day     time.Time
	Inside  int // inside the validity window
	Outside int // outside it
}

// UnlabelledASN is the ASN of measurements that name no network: the
// networks table's row for them, which Summary does not count as a network.
const UnlabelledASN = "AS0"

// NetworkRow is one row of the networks table.
type NetworkRow struct {
	// ASN is "AS<number>", or UnlabelledASN for the measurements without one.
	ASN string `json:"asn"`
	// Name is the probe_network_name of the latest measurement that had one.
	Name         string `json:"name"`
	Measurements int    `json:"measurements"`
	Intercepted  int    `json:"intercepted"`
	// FirstSeen and LastSeen bound the intercepted measurements.
	FirstSeen time.Time `json:"first_intercepted,omitzero"`
	LastSeen  time.Time `json:"last_intercepted,omitzero"`
	// Domains are the domains intercepted on this network.
	Domains []string `json:"domains"`
	// Intermediates are the SHA-1s seen on this network.
	Intermediates []string `json:"intermediates"`
}

// DomainRow is one row of the domains table.
type DomainRow struct {
	Domain       string `json:"domain"`
	Measurements int    `json:"measurements"`
	Intercepted  int    `json:"intercepted"`
	// FirstSeen and LastSeen bound the intercepted measurements.
	FirstSeen time.Time `json:"first_intercepted,omitzero"`
	LastSeen  time.Time `json:"last_intercepted,omitzero"`
	// Networks are the ASNs where it was intercepted.
	Networks      []string `json:"networks"`
	Intermediates []string `json:"intermediates"`
}

// Where a Gap is open.
const (
	// OpenBefore: sightings before the first window; From is the first.
	OpenBefore = "before_first_window"
	// OpenAfter: sightings after the last window; To is the last.
	OpenAfter = "after_last_window"
)

// Gap is a period when no intermediate seen in the data was valid: between
// two windows (From is when the earlier expired, To when the next began,
// both excluded), or before the first or after the last window when
// intermediates were seen then (Open).
type Gap struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Open is "", OpenBefore or OpenAfter.
	Open string  `json:"open,omitempty"`
	Days float64 `json:"days"`
	// ExpiredBefore are the intermediates whose window ended at From;
	// ValidAfter those whose window began at To.
	ExpiredBefore []string `json:"expired_before,omitempty"`
	ValidAfter    []string `json:"valid_after,omitempty"`
	// Sightings counts the handshakes in the gap, Measurements the
	// measurements.
	Sightings     int      `json:"sightings"`
	Measurements  int      `json:"measurements"`
	Networks      []string `json:"networks"`
	Domains       []string `json:"domains"`
	Intermediates []string `json:"intermediates"`
	// Listed are the first sightings in the gap, by time (at most
	// Config.MaxGapExamples).
	Listed []Sighting `json:"listed_sightings"`
}

// Sighting is one handshake whose chain held an intermediate.
type Sighting struct {
	Time         time.Time `json:"time"`
	ASN          string    `json:"asn"`
	Network      string    `json:"network"`
	Domain       string    `json:"domain"`
	Intermediate string    `json:"intermediate"`
	// DaysAfterExpiry is how long after the intermediate's NotAfter it
	// was seen (0 when before its NotBefore).
	DaysAfterExpiry float64 `json:"days_after_expiry"`
	// Source is "file:line".
	Source string `json:"source"`
}
