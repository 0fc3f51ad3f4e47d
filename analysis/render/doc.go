// Package render prints what kzprobe/analysis computes: the report's
// tables as a terminal table, CSV, Markdown or JSON; the domain x network
// matrix of `kzprobe compare` (also as HTML); the timeline of intermediate
// validity windows against sightings as SVG ([Timeline]) and PNG
// ([TimelinePNG]); and the one-page HTML report.
//
// # Design
//
// Every textual format is built from one model, [Table] (a name, a header
// and rows of strings), so the formats cannot drift apart: the terminal
// table, CSV and Markdown print the same cells, each with its control
// characters escaped ([Printable]: the data is hostile, and a terminal
// would act on them) and, in CSV, with what a spreadsheet would run as a
// formula neutralised. JSON is the analysis result itself. The SVG is
// written by hand with every text run escaped (encoding/xml's
// EscapeText), and the HTML page uses html/template with inline CSS and
// the SVG inline: the page loads nothing from anywhere. Its tables are
// built from typed cells (a fingerprint or serial as a short form whose
// whole value opens in a box, a date as a <time> that never wraps), each
// cell labelled with its column, so that a table too wide for its
// container becomes one card per row (CSS container queries): the page
// never scrolls sideways, which TestReportInBrowser checks in headless
// Chromium at 1400, 1024 and 390 pixels. The PNG is
// rasterized in Go (no browser, no cgo) from the SVG itself, with the Go
// fonts, so the two pictures cannot disagree.
package render
