package pipeline

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// ReportData is what the HTML report is drawn from.
type ReportData struct {
	Summary     Summary
	Points      []LatencyPoint // in send order
	LegitScores []float64
	FraudScores []float64
	Threshold   float64 // the batcher's fraud threshold, drawn on the score plot; 0 to omit
	Generated   time.Time
}

var (
	legitColor = color.RGBA{R: 0x33, G: 0x66, B: 0xcc, A: 0xff}
	fraudColor = color.RGBA{R: 0xcc, G: 0x33, B: 0x33, A: 0xff}
	p99Color   = color.RGBA{R: 0xcc, G: 0x77, B: 0x00, A: 0xff}
)

const (
	plotWidth  = 7.5 * vg.Inch
	plotHeight = 3.2 * vg.Inch
	// The latency plot shows per-window percentiles rather than one mark
	// per transaction: 20,000 marks would make a multi-megabyte SVG.
	latencyWindows = 100
	scoreBins      = 20
)

// WriteReport renders the report as one self-contained HTML file (SVG
// inlined, no scripts, no external resources), creating its directory.
func WriteReport(path string, d ReportData) error {
	html, err := RenderReport(d)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	if err := os.WriteFile(path, html, 0o644); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

// RenderReport renders the report's HTML.
func RenderReport(d ReportData) ([]byte, error) {
	plots, err := reportPlots(d)
	if err != nil {
		return nil, err
	}
	var svgs [3]template.HTML
	for i, p := range plots {
		if svgs[i], err = svg(p); err != nil {
			return nil, err
		}
	}
	var table bytes.Buffer
	if err := d.Summary.PrintTable(&table); err != nil {
		return nil, fmt.Errorf("summary table: %w", err)
	}
	var out bytes.Buffer
	err = reportTemplate.Execute(&out, map[string]any{
		"Summary":   d.Summary,
		"Table":     table.String(),
		"Generated": d.Generated.UTC().Format(time.RFC3339),
		"Latency":   svgs[0],
		"Batches":   svgs[1],
		"Scores":    svgs[2],
	})
	if err != nil {
		return nil, fmt.Errorf("report template: %w", err)
	}
	return out.Bytes(), nil
}

// reportPlots draws latency over time, batch sizes and the score histogram.
func reportPlots(d ReportData) ([3]*plot.Plot, error) {
	var out [3]*plot.Plot
	var err error
	if out[0], err = latencyPlot(d.Points); err != nil {
		return out, fmt.Errorf("latency plot: %w", err)
	}
	if out[1], err = batchPlot(d.Summary.Batches); err != nil {
		return out, fmt.Errorf("batch size plot: %w", err)
	}
	if out[2], err = scorePlot(d.LegitScores, d.FraudScores, d.Threshold); err != nil {
		return out, fmt.Errorf("score plot: %w", err)
	}
	return out, nil
}

// svg renders a plot to an inline <svg> element. The markup comes from
// gonum's SVG canvas, not from user input, so it is marked safe.
func svg(p *plot.Plot) (template.HTML, error) {
	wt, err := p.WriterTo(plotWidth, plotHeight, "svg")
	if err != nil {
		return "", fmt.Errorf("svg canvas: %w", err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return "", fmt.Errorf("render svg: %w", err)
	}
	s := b.String()
	// Drop the XML prolog: inline SVG in HTML starts at <svg.
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	return template.HTML(s), nil
}

// windowPercentiles groups points into n windows of send time and returns,
// for each non-empty window, its midpoint and its p50 and p99 latency.
func windowPercentiles(points []LatencyPoint, n int) (p50, p99 plotter.XYs) {
	if len(points) == 0 || n <= 0 {
		return nil, nil
	}
	var span time.Duration
	for _, p := range points {
		span = max(span, p.SinceStart)
	}
	width := span/time.Duration(n) + 1
	windows := make([][]time.Duration, n+1)
	for _, p := range points {
		i := int(p.SinceStart / width)
		windows[i] = append(windows[i], p.Latency)
	}
	for i, w := range windows {
		if len(w) == 0 {
			continue
		}
		slices.Sort(w)
		x := (time.Duration(i)*width + width/2).Seconds()
		p50 = append(p50, plotter.XY{X: x, Y: millis(Percentile(w, 50))})
		p99 = append(p99, plotter.XY{X: x, Y: millis(Percentile(w, 99))})
	}
	return p50, p99
}

func latencyPlot(points []LatencyPoint) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "End-to-end latency over the run (send → result at sink)"
	p.X.Label.Text = "time since first send (s)"
	p.Y.Label.Text = "latency (ms)"
	p.Add(plotter.NewGrid())
	p50, p99 := windowPercentiles(points, latencyWindows)
	if len(p50) > 0 {
		l50, err := plotter.NewLine(p50)
		if err != nil {
			return nil, err
		}
		l50.Color = legitColor
		l50.Width = vg.Points(1.5)
		l99, err := plotter.NewLine(p99)
		if err != nil {
			return nil, err
		}
		l99.Color = p99Color
		l99.Width = vg.Points(1.5)
		p.Add(l50, l99)
		p.Legend.Add("p50 per window", l50)
		p.Legend.Add("p99 per window", l99)
		p.Legend.Top = true
	}
	// Headroom above the p99 line for the legend.
	p.Y.Min = 0
	for _, xy := range p99 {
		p.Y.Max = max(p.Y.Max, xy.Y*1.25)
	}
	return p, nil
}

func bucketLabel(lower, upper float64) string {
	if upper == lower+1 || upper <= 1 {
		return fmt.Sprintf("%g", upper)
	}
	return fmt.Sprintf("%g–%g", lower+1, upper)
}

func batchPlot(h Histogram) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Batch sizes (rows per runtime request, from the batcher's metrics)"
	p.Y.Label.Text = "batches"
	p.X.Label.Text = "rows per batch"
	if h.Count == 0 {
		p.Title.Text += ": none recorded"
		return p, nil
	}
	// Buckets past the largest batch only stretch the axis.
	buckets := h.Buckets
	for h.Above == 0 && len(buckets) > 0 && buckets[len(buckets)-1].Count == 0 {
		buckets = buckets[:len(buckets)-1]
	}
	var values plotter.Values
	var names []string
	lower := 0.0
	for _, b := range buckets {
		values = append(values, float64(b.Count))
		names = append(names, bucketLabel(lower, b.UpperBound))
		lower = b.UpperBound
	}
	if h.Above > 0 {
		values = append(values, float64(h.Above))
		names = append(names, fmt.Sprintf(">%g", lower))
	}
	bars, err := plotter.NewBarChart(values, vg.Points(36))
	if err != nil {
		return nil, err
	}
	bars.Color = legitColor
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalX(names...)
	return p, nil
}

// scoreFractions bins scores in [0,1] and returns each bin's share of the
// class, so that the 8 % fraud class is as visible as the legit one.
func scoreFractions(scores []float64, bins int) plotter.Values {
	out := make(plotter.Values, bins)
	if len(scores) == 0 {
		return out
	}
	for _, s := range scores {
		i := int(s * float64(bins))
		out[min(max(i, 0), bins-1)]++
	}
	for i := range out {
		out[i] /= float64(len(scores))
	}
	return out
}

func scorePlot(legit, fraud []float64, threshold float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Fraud score by true class (share of each class per score bin)"
	p.X.Label.Text = "model score"
	p.Y.Label.Text = "share of class"
	width := vg.Points(8)
	legitShares, fraudShares := scoreFractions(legit, scoreBins), scoreFractions(fraud, scoreBins)
	// Headroom above the tallest bar for the legend.
	for _, v := range append(slices.Clone(legitShares), fraudShares...) {
		p.Y.Max = max(p.Y.Max, v*1.3)
	}
	lb, err := plotter.NewBarChart(legitShares, width)
	if err != nil {
		return nil, err
	}
	lb.Color, lb.LineStyle.Width, lb.Offset = legitColor, 0, -width/2
	fb, err := plotter.NewBarChart(fraudShares, width)
	if err != nil {
		return nil, err
	}
	fb.Color, fb.LineStyle.Width, fb.Offset = fraudColor, 0, width/2
	p.Add(lb, fb)
	p.Legend.Add(fmt.Sprintf("legit (%d)", len(legit)), lb)
	p.Legend.Add(fmt.Sprintf("fraud (%d)", len(fraud)), fb)
	p.Legend.Top = true
	p.Legend.Left = true
	names := make([]string, scoreBins)
	for i := range names {
		if i%2 == 0 {
			names[i] = fmt.Sprintf("%.1f", float64(i)/scoreBins)
		}
	}
	p.NominalX(names...)
	if threshold > 0 {
		p.Title.Text += fmt.Sprintf("; flagged above %.2f", threshold)
	}
	return p, nil
}

var reportTemplate = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Veil local pipeline report</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
pre { background: #f5f5f5; padding: 1rem; overflow-x: auto; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: .5rem 1rem; }
figure { margin: 1.5rem 0; }
figure svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>Veil: confidential fraud scoring, local run</h1>
<p class="warn"><strong>DEVELOPMENT ONLY:</strong> the model key was released by the development KBS to the
<code>sample</code> TEE, which proves nothing. Production uses Intel TDX evidence.</p>
<p>Generated {{.Generated}}: {{.Summary.Settings.Count}} transactions, seed {{.Summary.Settings.Seed}},
model {{.Summary.Model}} version {{.Summary.ModelVersion}}, protocol {{.Summary.Settings.Protocol}}.</p>
<pre>{{.Table}}</pre>
<figure>{{.Latency}}</figure>
<figure>{{.Batches}}</figure>
<figure>{{.Scores}}</figure>
</body>
</html>
`))
