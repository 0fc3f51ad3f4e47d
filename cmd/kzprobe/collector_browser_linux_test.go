package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkPageInBrowser loads the collector's live report, https://.../, in
// headless Chromium (the collector's key accepted by its pin, nothing else
// reachable) at a desktop's and a phone's width: the browser gets the page
// over TLS, its DOM holds the report's sections and the lab's domains, and
// the screenshot is the page drawn. It skips without Chromium unless
// KZPROBE_E2E_REQUIRE is set, as analysis/render's TestReportInBrowser.
func checkPageInBrowser(t *testing.T, col *collectorProc, domains ...string) {
	t.Helper()
	var browser string
	for _, name := range []string{"chromium-headless-shell", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		const msg = "no headless Chromium: apt-get install -y chromium-headless-shell (scripts/e2e.sh --install-only does)"
		if os.Getenv("KZPROBE_E2E_REQUIRE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	spki := strings.TrimPrefix(col.pin, "sha256:")
	run := func(width, height int, args ...string) []byte {
		profile := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, browser, append([]string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
			"--disable-sync", "--disable-extensions", "--disable-breakpad", "--no-proxy-server",
			"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
			"--ignore-certificate-errors-spki-list=" + spki,
			"--user-data-dir=" + profile, "--hide-scrollbars",
			fmt.Sprintf("--window-size=%d,%d", width, height),
		}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", filepath.Base(browser), err, stderr.String())
		}
		return stdout.Bytes()
	}
	dom := run(1400, 900, "--dump-dom", col.url+"/")
	for _, want := range append([]string{"<h2", "Intermediates", "<table"}, domains...) {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("the page Chromium got from the collector lacks %q (%d bytes of DOM)", want, len(dom))
		}
	}
	for _, width := range []int{1400, 390} {
		out := filepath.Join(t.TempDir(), fmt.Sprintf("collector-%d.png", width))
		run(width, 1200, "--screenshot="+out, col.url+"/")
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if b := img.Bounds(); b != image.Rect(0, 0, width, 1200) {
			t.Errorf("screenshot %v; want %dx1200", b, width)
		}
		ink := 0
		for y := 10; y < 80; y++ {
			for x := 0; x < min(width, 600); x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if r>>8 < 90 && g>>8 < 90 && b>>8 < 90 {
					ink++
				}
			}
		}
		if ink < 300 {
			t.Errorf("at %d px: %d dark pixels where the title is; want the page drawn", width, ink)
		}
		if dir := os.Getenv("KZPROBE_SCREENSHOTS"); dir != "" {
			data, _ := os.ReadFile(out)
			os.WriteFile(filepath.Join(dir, filepath.Base(out)), data, 0o644)
		}
	}
}
