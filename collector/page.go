package collector

import (
	"context"
	"io"
	"os"
	"time"

	"kzprobe/analysis"
	"kzprobe/analysis/render"
)

// FilePage returns a Config.Page that reads every file under dir (the file
// store's folder) as `kzprobe report` does and writes the same page with
// the same renderer (render.Report): the chains judged again by cfg.Judge,
// OONI measurements given a verdict derived from their chains. An empty
// store gives a page that says so.
func FilePage(dir, title string, cfg analysis.Config) func(ctx context.Context, w io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		an := analysis.New(cfg)
		ccfg := cfg
		ccfg.DeriveVerdicts = true
		cmp := analysis.NewComparison(ccfg)
		rd := &analysis.Reader{Warn: func(wn analysis.Warning) { an.Warn(wn); cmp.Warn(wn) }}
		var stats []analysis.FileStats
		if files, err := analysis.Files([]string{dir}); err == nil && len(files) > 0 {
			stats, err = rd.ReadPaths([]string{dir}, func(r *analysis.Record) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				an.Add(r)
				cmp.Add(r)
				return nil
			})
			if err != nil {
				return err
			}
		} else if err != nil && !os.IsNotExist(err) {
			return err
		}
		an.AddFileStats(stats...)
		cmp.AddFileStats(stats...)
		return render.Report(w, render.ReportData{
			Title:     title,
			Generated: time.Now().UTC(),
			Inputs:    []string{"collector store"},
			Result:    an.Result(),
			Matrix:    cmp.Matrix(),
		})
	}
}
