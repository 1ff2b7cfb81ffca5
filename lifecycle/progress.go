package lifecycle

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a one-line progress bar on a terminal, redrawn every
// tick from counters the run updates. The zero writer draws nothing.
type progress struct {
	w           io.Writer
	label       string
	listed      atomic.Int64
	done        atomic.Int64
	listingDone atomic.Bool
	quit        chan struct{}
	finished    chan struct{}
	once        sync.Once
}

const progressTick = 200 * time.Millisecond

func newProgress(w io.Writer, label string) *progress {
	p := &progress{w: w, label: label, quit: make(chan struct{}), finished: make(chan struct{})}
	if w == nil {
		close(p.finished)
		return p
	}
	go func() {
		defer close(p.finished)
		t := time.NewTicker(progressTick)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				fmt.Fprint(p.w, "\r\033[K") // clear the line for the summary
				return
			case <-t.C:
				fmt.Fprint(p.w, "\r"+p.line(40)+"\033[K")
			}
		}
	}()
	return p
}

// stop clears the bar; it may be called more than once.
func (p *progress) stop() {
	p.once.Do(func() { close(p.quit) })
	<-p.finished
}

// line renders the bar: while listing, the counts; after, a bar of width
// cells and a percentage.
func (p *progress) line(width int) string {
	return renderProgress(p.label, p.done.Load(), p.listed.Load(), p.listingDone.Load(), width)
}

func renderProgress(label string, done, listed int64, listingDone bool, width int) string {
	if !listingDone || listed == 0 {
		return fmt.Sprintf("%s: %d objects done, %d listed so far…", label, done, listed)
	}
	filled := int(done * int64(width) / listed)
	filled = min(max(filled, 0), width)
	return fmt.Sprintf("%s: [%s%s] %d/%d objects (%d%%)", label,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, listed, done*100/listed)
}
