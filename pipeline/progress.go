package pipeline

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress draws a progress bar for a known total. On a terminal it
// redraws one line; otherwise (CI logs, a README paste) it prints a line at
// each quarter so the output stays readable.
type Progress struct {
	w        io.Writer
	label    string
	total    int64
	done     atomic.Int64
	terminal bool
	start    time.Time
	now      func() time.Time

	mu       sync.Mutex
	printed  int64 // quarters printed (non-terminal)
	lastDone int64 // done count of the last line printed (non-terminal)
	stop     chan struct{}
	stopped  chan struct{}
}

const progressWidth = 30

// NewProgress starts a progress display; call Finish when done. A nil
// *Progress is valid and draws nothing.
func NewProgress(w io.Writer, label string, total int, terminal bool) *Progress {
	p := &Progress{w: w, label: label, total: int64(total), terminal: terminal,
		start: time.Now(), now: time.Now, stop: make(chan struct{}), stopped: make(chan struct{})}
	go p.loop()
	return p
}

// Add counts n more done.
func (p *Progress) Add(n int) {
	if p == nil {
		return
	}
	p.done.Add(int64(n))
}

// Done is how many were counted so far.
func (p *Progress) Done() int64 {
	if p == nil {
		return 0
	}
	return p.done.Load()
}

func (p *Progress) loop() {
	defer close(p.stopped)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.draw(false)
		case <-p.stop:
			return
		}
	}
}

// Finish draws the final state and ends the line.
func (p *Progress) Finish() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.stopped
	p.draw(true)
}

func (p *Progress) draw(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := p.done.Load()
	if !p.terminal {
		quarter := int64(0)
		if p.total > 0 {
			quarter = done * 4 / p.total
		}
		if quarter > p.printed || (final && done != p.lastDone) {
			p.printed, p.lastDone = max(p.printed, quarter), done
			fmt.Fprintln(p.w, p.line(done))
		}
		return
	}
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r%s%s", p.line(done), end)
}

// line renders e.g. "  sending [==========>         ] 6000/20000  30 %  2987/s".
func (p *Progress) line(done int64) string {
	frac := 0.0
	if p.total > 0 {
		frac = float64(done) / float64(p.total)
	}
	filled := int(frac * progressWidth)
	bar := strings.Repeat("=", filled)
	if filled < progressWidth {
		bar += ">" + strings.Repeat(" ", progressWidth-filled-1)
	}
	elapsed := p.now().Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	return fmt.Sprintf("  %s [%s] %d/%d %3.0f %% %6.0f/s", p.label, bar, done, p.total, frac*100, rate)
}
