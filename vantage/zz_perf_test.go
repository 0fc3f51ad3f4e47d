package vantage
import ("net/netip";"strings";"testing")
func BenchmarkScrubJSON(b *testing.B){
 s:=NewScrubber(netip.MustParseAddr("192.0.2.7"),netip.MustParseAddr("2001:db8::7"))
 in:=strings.Repeat(`{"ip":"198.51.100.53","failure":null,"cert":"MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJRTESMBAGA1UE"} `,1<<12)
 b.SetBytes(int64(len(in)))
 for b.Loop(){ s.Scrub(in) }
}
