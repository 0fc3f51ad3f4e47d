package targets
import ("testing";"time";"strings")
func TestZZSlow(t *testing.T) {
	var b strings.Builder
	for r := rune(0x4e00); b.Len() < 60000; r++ { b.WriteRune(r) }
	s := b.String() + ".kz"
	st := time.Now()
	_, err := Normalize(s)
	t.Log(len(s), time.Since(st), err)
}
