package targets
import ("testing";"runtime";"strconv")
func TestZZMem(t *testing.T) {
	var a, b runtime.MemStats
	runtime.GC(); runtime.ReadMemStats(&a)
	d := NewDeduper()
	for i := range 1_000_000 { d.Seen(Target{Domain: "d"+strconv.Itoa(i)+".kz"}) }
	runtime.GC(); runtime.ReadMemStats(&b)
	t.Log(float64(b.HeapAlloc-a.HeapAlloc)/1e6, "MB", d.Len())
}
