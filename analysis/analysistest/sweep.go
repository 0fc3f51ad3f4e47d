package analysistest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// SweepSighting is one planned record of `kzprobe sweep`.
type SweepSighting struct {
	// Inter indexes ReportIntermediates for an interception chain; -1 is
	// the public chain (the endpoint's own for clean, a chain that is not
	// the ISCA PKI for sni_intercepted_other); ignored for sni_blocked
	// and error, which present none.
	Inter int
	// Time is the record's time, in measurement.TimeLayout, UTC.
	Time    string
	ASN     string
	Domain  string
	Verdict measurement.Verdict
}

// FileSweep is the sweep fixture's file, relative to the folder
// WriteSweepFixture writes into.
const FileSweep = "sweep/2024-11.jsonl"

// SweepEndpoint is the sweep fixture's neutral endpoint.
const SweepEndpoint = "203.0.113.5:443"

// SweepPlan is a sweep beside the report fixture, against the fixture's
// kzprobe run records (FileKzprobe: compromat.ru intercepted and
// www.pinterest.com clean on AS9198, ukraina.ru intercepted on
// AS206026): a name run confirmed (twice seen), one run saw clean, one
// blocked that run never measured, an interception by another PKI, names
// swept clean, an error, and a network with no run at all (AS48716).
var SweepPlan = []SweepSighting{
	{Inter: 6, Time: "2024-11-18 10:00:00", ASN: "AS9198", Domain: "compromat.ru", Verdict: measurement.VerdictSNIInterceptedISCA},
	{Inter: 6, Time: "2024-11-25 10:00:00", ASN: "AS9198", Domain: "compromat.ru", Verdict: measurement.VerdictSNIInterceptedISCA},
	{Inter: 6, Time: "2024-11-18 10:00:01", ASN: "AS9198", Domain: "www.pinterest.com", Verdict: measurement.VerdictSNIInterceptedISCA},
	{Inter: -1, Time: "2024-11-18 10:00:02", ASN: "AS9198", Domain: "xakep.ru", Verdict: measurement.VerdictSNIBlocked},
	{Inter: -1, Time: "2024-11-18 10:00:03", ASN: "AS9198", Domain: "wikipedia.org", Verdict: measurement.VerdictClean},
	{Inter: 6, Time: "2024-11-19 08:00:00", ASN: "AS206026", Domain: "ukraina.ru", Verdict: measurement.VerdictSNIInterceptedISCA},
	{Inter: -1, Time: "2024-11-19 08:00:01", ASN: "AS206026", Domain: "kz.tsargrad.tv", Verdict: measurement.VerdictSNIInterceptedOther},
	{Inter: -1, Time: "2024-11-19 08:00:02", ASN: "AS206026", Domain: "example.org", Verdict: measurement.VerdictError},
	{Inter: 6, Time: "2024-11-20 12:00:00", ASN: "AS48716", Domain: "rutracker.org", Verdict: measurement.VerdictSNIInterceptedISCA},
	{Inter: -1, Time: "2024-11-20 12:00:01", ASN: "AS48716", Domain: "wikipedia.org", Verdict: measurement.VerdictClean},
}

// SweepMeasurement returns s as a record of `kzprobe sweep`, judged as the
// sweep judges: the chain analysed at the record's time with the test
// roots as interception roots.
func (p *PKI) SweepMeasurement(s SweepSighting) (*measurement.Measurement, error) {
	kb, err := chain.Default()
	if err != nil {
		return nil, err
	}
	if _, err := kb.AddRootsPEM(p.RootsPEM(), "analysistest"); err != nil {
		return nil, err
	}
	a := chain.NewAnalyzer(newPool(p.PublicRoot), kb)
	t := utc(s.Time)
	pin, err := chain.SPKIPin(p.PublicCA.DER)
	if err != nil {
		return nil, err
	}
	endpointPin := pin.String()
	m := &measurement.Measurement{
		Envelope: fixtureEnvelope("sweep", measurement.SweepTestName, measurement.SweepTestVersion, s.ASN, s.Domain, t),
		TestKeys: measurement.TestKeys{
			Domain: s.Domain, Port: 443, Verdict: s.Verdict,
			SNISweep: &measurement.SNISweep{Endpoint: SweepEndpoint, EndpointPin: endpointPin, PinSource: "flag", Hello: "chrome", ControlSNI: "example.com"},
		},
	}
	h := measurement.TLSHandshake{Network: "tcp", Address: SweepEndpoint, ServerName: s.Domain, Fingerprint: "chrome", NoTLSVerify: true}
	sk := m.TestKeys.SNISweep
	ok := true
	switch s.Verdict {
	case measurement.VerdictSNIBlocked:
		f := "connection_reset"
		h.Failure = &f
		sk.ReasonCode = measurement.SweepBlocked
		sk.Control = &measurement.SweepControl{OK: true, PresentedPin: endpointPin, PinMatch: &ok}
	case measurement.VerdictError:
		f := "connection_reset"
		h.Failure = &f
		sk.ReasonCode = measurement.SweepControlFailed
		no := false
		sk.Control = &measurement.SweepControl{PinMatch: &no}
	default:
		der, err := p.Chain(s.Inter, s.Domain)
		if err != nil {
			return nil, err
		}
		for _, d := range der {
			h.PeerCertificates = append(h.PeerCertificates, measurement.BinaryData(d))
		}
		h.TLSVersion, h.CipherSuite = "TLSv1.3", "TLS_AES_128_GCM_SHA256"
		j := a.Judge(der, s.Domain, t)
		m.TestKeys.Chains = append(m.TestKeys.Chains, j)
		m.TestKeys.SetInterception(j.Interception)
		match := s.Verdict == measurement.VerdictClean
		sk.PinMatch = &match
		if match {
			sk.PresentedPin, sk.ReasonCode = endpointPin, measurement.SweepPinMatch
		} else {
			sk.PresentedPin, sk.ReasonCode = "sha256:presented", measurement.SweepIntercepted
			sk.Control = &measurement.SweepControl{OK: true, PresentedPin: endpointPin, PinMatch: &ok}
		}
	}
	m.TestKeys.TLSHandshakes = append(m.TestKeys.TLSHandshakes, h)
	return m, nil
}

// WriteSweepFixture writes SweepPlan as JSONL to FileSweep under dir (a
// folder of its own, or the report fixture's folder), made with p.
func WriteSweepFixture(dir string, p *PKI) (string, error) {
	var b bytes.Buffer
	for _, s := range SweepPlan {
		m, err := p.SweepMeasurement(s)
		if err != nil {
			return "", err
		}
		line, err := json.Marshal(m)
		if err != nil {
			return "", err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(dir, filepath.FromSlash(FileSweep))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, b.Bytes(), 0o644)
}
