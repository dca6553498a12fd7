package server

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/backup-oracle/backup-oracle/repo"
)

// The /exists hit path: Kyverno asks 2 or 3 times per PVC, and a migration asks about every PVC
// of a cluster at once, so a memoised answer must cost little more than a bare net/http handler.
// Two costs dominated it: encoding the answer with encoding/json (reflection, 6 allocations) and
// arming a timer for the lookup's timeout that a memoised answer never needs.

// DefaultRenderCacheSize bounds the rendered answers kept (Options.RenderCacheSize).
const DefaultRenderCacheSize = 10_000

// renderedAnswer is an authoritative answer's JSON, split where indexAgeSeconds goes (the only
// field that changes from one request to the next), with the answer it was rendered from.
type renderedAnswer struct {
	from repo.Answer
	head []byte // up to and including `"indexAgeSeconds":`, or the whole body when there is no age
	tail []byte // what follows the age
}

// memoisable reports whether a's rendering may be memoised: an authoritative plain answer, the
// kind Kyverno asks for again and again. An answer with a reason, a point in time, near misses,
// an acknowledgement, warnings, other backends or a named source renders fields after the index age and is
// rendered by encoding/json each time.
func memoisable(a repo.Answer) bool {
	return a.Reason == nil && a.PointInTime.IsZero() && len(a.NearMisses) == 0 && a.Accepted == "" &&
		len(a.Warnings) == 0 && len(a.Elsewhere) == 0 && a.RestoreSource == ""
}

// sameRendering reports whether a and b render to the same JSON but for their index age: every
// field render reads. Answers with a reason are never memoised.
func sameRendering(a, b repo.Answer) bool {
	if a.PVC != b.PVC || a.Decision != b.Decision || a.Backend != b.Backend || a.Source != b.Source ||
		a.SnapshotCount != b.SnapshotCount || !a.IndexTime.Equal(b.IndexTime) || !memoisable(a) || !memoisable(b) {
		return false
	}

	switch {
	case a.Latest == nil || b.Latest == nil:
		return a.Latest == b.Latest
	default:
		return a.Latest.ID == b.Latest.ID && a.Latest.StartTime.Equal(b.Latest.StartTime) && a.Latest.TotalSize == b.Latest.TotalSize
	}
}

// writeMemoised writes the answer from its memoised rendering, rendering it first if the memo
// holds none for this answer. The bytes are those encoding/json writes (the golden tests hold
// both paths to the same files).
func (h *handler) writeMemoised(c *gin.Context, code int, a repo.Answer) {
	r, ok := h.renders.Get(a.PVC)
	if !ok || !sameRendering(r.from, a) {
		var err error
		if r, err = h.renderParts(a); err != nil { // strings, numbers and times: it cannot fail
			c.JSON(code, h.render(a))
			return
		}

		h.renders.Add(a.PVC, r)
	}

	bp := bufPool.Get().(*[]byte) //nolint:forcetypeassert // the pool only holds *[]byte
	b := (*bp)[:0]
	b = append(b, r.head...)

	if !a.IndexTime.IsZero() {
		b = appendJSONFloat(b, h.now().Sub(a.IndexTime).Seconds())
		b = append(b, r.tail...)
	}

	c.Writer.Header()["Content-Type"] = jsonContentType
	c.Writer.WriteHeader(code)
	_, _ = c.Writer.Write(b)

	*bp = b
	bufPool.Put(bp)
}

//nolint:gochecknoglobals // constants in all but name: a shared header value, a buffer pool, a cancelled context
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	bufPool         = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
	releasedContext = func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()

		return ctx
	}()
)

// renderParts renders a with encoding/json and splits it around the age.
func (h *handler) renderParts(a repo.Answer) (*renderedAnswer, error) {
	resp := h.render(a)
	resp.IndexAgeSeconds = nil

	body, err := json.Marshal(resp)
	if err != nil {
		return nil, err
	}

	r := &renderedAnswer{from: a, head: body}
	if !a.IndexTime.IsZero() { // the age is the last field rendered for an answer without error
		head := body[: len(body)-1 : len(body)-1] // without the closing brace; the append copies
		head = append(head, `,"indexAgeSeconds":`...)
		r.head, r.tail = head, []byte("}")
	}

	return r, nil
}

// appendJSONFloat appends f as encoding/json writes a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, '0')
	}

	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		out, err := json.Marshal(f)
		if err != nil {
			return append(b, '0')
		}

		return append(b, out...)
	}

	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

func newRenderCache(size int) *lru.Cache[repo.PVC, *renderedAnswer] {
	if size <= 0 {
		size = DefaultRenderCacheSize
	}

	c, err := lru.New[repo.PVC, *renderedAnswer](size)
	if err != nil { // only for a size below 1
		return nil
	}

	return c
}

// lazyTimeout is context.WithDeadline whose timer is armed only when someone waits on it: a
// memoised lookup returns without looking at its context, and must not pay for a timer.
// release must be called when the lookup returns.
type lazyTimeout struct {
	parent   context.Context
	deadline time.Time

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

func newLazyTimeout(parent context.Context, deadline time.Time) *lazyTimeout {
	return &lazyTimeout{parent: parent, deadline: deadline}
}

func (l *lazyTimeout) arm() context.Context {
	l.once.Do(func() { l.ctx, l.cancel = context.WithDeadline(l.parent, l.deadline) })
	return l.ctx
}

// Deadline implements context.Context.
func (l *lazyTimeout) Deadline() (time.Time, bool) { return l.arm().Deadline() }

// Done implements context.Context.
func (l *lazyTimeout) Done() <-chan struct{} { return l.arm().Done() }

// Err implements context.Context.
func (l *lazyTimeout) Err() error { return l.arm().Err() }

// Value implements context.Context.
func (l *lazyTimeout) Value(key any) any { return l.parent.Value(key) }

// release ends the lookup's context: a context never armed is from now on a cancelled one.
func (l *lazyTimeout) release() {
	l.once.Do(func() { l.ctx = releasedContext })

	if l.cancel != nil {
		l.cancel()
	}
}

var _ context.Context = (*lazyTimeout)(nil)
