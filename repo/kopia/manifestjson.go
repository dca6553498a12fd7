package kopia

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// A manifest content is large (a compacted one holds every manifest of the repository, about
// 750 bytes of JSON each: 280 MB at 370,000 snapshots) and read in full at start and after each
// compaction, so it is decoded by this purpose-built scanner instead of encoding/json (5 times
// slower here): a streaming pass cuts the document into array elements, and each element (one
// manifest entry, under a kilobyte) is read in memory for the few fields the index keeps, the
// rest skipped. The input is what kopia's encoder wrote; a structural error (and any error in a
// field the index reads) is an error, so a damaged content is never mistaken for a smaller one.

var errSyntax = errors.New("malformed manifest JSON")

// stream cuts a JSON document read from r into tokens and whole values.
type stream struct {
	r   io.Reader
	buf []byte
	pos int // next unread byte in buf
	end int // end of valid data in buf
	eof bool
	err error
}

func newStream(r io.Reader) *stream { return &stream{r: r, buf: make([]byte, 256<<10)} }

// fill reads more input, keeping buf[keep:end]; it returns false at the end of the input.
func (s *stream) fill(keep int) bool {
	if s.eof {
		return false
	}

	if keep > 0 {
		n := copy(s.buf, s.buf[keep:s.end])
		s.pos -= keep
		s.end = n
	}

	if s.end == len(s.buf) {
		s.buf = append(s.buf, make([]byte, len(s.buf))...)
	}

	n, err := io.ReadAtLeast(s.r, s.buf[s.end:], 1)
	s.end += n

	switch {
	case err == io.EOF: //nolint:errorlint // io.ReadAtLeast returns io.EOF itself; a truncated gzip stream is io.ErrUnexpectedEOF, an error
		s.eof = true
	case err != nil:
		s.eof, s.err = true, err
	}

	return n > 0
}

// peek skips whitespace and returns the next byte without consuming it.
func (s *stream) peek() (byte, error) {
	for {
		for s.pos < s.end {
			if c := s.buf[s.pos]; !isSpace(c) {
				return c, nil
			}

			s.pos++
		}

		if !s.fill(s.pos) {
			return 0, s.eofError()
		}
	}
}

func (s *stream) eofError() error {
	if s.err != nil {
		return s.err
	}

	return fmt.Errorf("%w: unexpected end of input", errSyntax)
}

// expect consumes the next non-space byte, which must be c.
func (s *stream) expect(c byte) error {
	got, err := s.peek()
	if err != nil {
		return err
	}

	if got != c {
		return fmt.Errorf("%w: want %q, got %q", errSyntax, c, got)
	}

	s.pos++

	return nil
}

// value returns the next whole JSON value. The slice is only valid until the next call.
func (s *stream) value() ([]byte, error) {
	if _, err := s.peek(); err != nil {
		return nil, err
	}

	start := s.pos

	for {
		n, err := valueEnd(s.buf[start:s.end])
		if err == nil {
			s.pos = start + n
			return s.buf[start:s.pos], nil
		}

		if !errors.Is(err, errShort) {
			return nil, err
		}

		s.pos = start
		if !s.fill(start) {
			return nil, s.eofError()
		}

		start = s.pos
	}
}

// parse calls f with the input from the next non-space byte on, until f stops returning errShort
// (it needs more input), and consumes the length f returns. The slice is only valid during f.
func (s *stream) parse(f func(b []byte) (int, error)) error {
	if _, err := s.peek(); err != nil {
		return err
	}

	for {
		n, err := f(s.buf[s.pos:s.end])
		if !errors.Is(err, errShort) {
			s.pos += n
			return err
		}

		if !s.fill(s.pos) {
			return s.eofError()
		}
	}
}

var errShort = errors.New("value continues past the buffer")

// valueEnd returns the length of the JSON value at the start of b, or errShort when b ends
// inside it. Strings are skipped with bytes.IndexByte, the fast path of this scanner.
func valueEnd(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errShort
	}

	switch b[0] {
	case '"':
		return stringEnd(b)
	case '{', '[':
	default:
		return literalEnd(b, false)
	}

	depth := 0

	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			n, err := stringEnd(b[i:])
			if err != nil {
				return 0, err
			}

			i += n - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		}
	}

	return 0, errShort
}

// stringEnd returns the length of the JSON string at the start of b (quotes included).
func stringEnd(b []byte) (int, error) {
	// Most strings (keys, labels) are short: look at them directly before asking IndexByte.
	for i := 1; i < len(b) && i < 24; i++ {
		switch b[i] {
		case '"':
			return i + 1, nil
		case '\\':
			return stringEndEscaped(b)
		}
	}

	return stringEndEscaped(b)
}

func stringEndEscaped(b []byte) (int, error) {
	i := 1

	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, errShort
		}

		i += j

		backslashes := 0
		for k := i - 1; k > 0 && b[k] == '\\'; k-- {
			backslashes++
		}

		i++

		if backslashes%2 == 0 {
			return i, nil
		}
	}
}

// literalEnd returns the length of the number, true, false or null at the start of b; atEOF
// says no byte follows b.
func literalEnd(b []byte, atEOF bool) (int, error) {
	for i, c := range b {
		if c == ',' || c == '}' || c == ']' || isSpace(c) {
			if i == 0 {
				return 0, fmt.Errorf("%w: unexpected %q", errSyntax, c)
			}

			return i, nil
		}
	}

	if atEOF && len(b) > 0 {
		return len(b), nil
	}

	return 0, errShort
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}

	return b
}

// object iterates over the members of the JSON object b (one whole value), calling f with each
// key and its raw value. null has no members (kopia writes deletion markers with "labels":null
// and "data":null).
func object(b []byte, f func(key, value []byte) error) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}

	n, err := objectAt(b, f)

	switch {
	case errors.Is(err, errShort):
		return fmt.Errorf("%w: unterminated object", errSyntax)
	case err != nil:
		return err
	case n != len(b):
		return fmt.Errorf("%w: data after an object", errSyntax)
	}

	return nil
}

// objectAt reads the JSON object at the start of b (after spaces), calling f with each member's
// key and raw value, and returns the object's length; errShort when b ends inside it (f may then
// have been called for some members: a caller that retries with more input starts afresh).
func objectAt(b []byte, f func(key, value []byte) error) (int, error) {
	i := len(b) - len(skipSpace(b))
	if i == len(b) {
		return 0, errShort
	}

	if b[i] != '{' {
		return 0, fmt.Errorf("%w: want an object", errSyntax)
	}

	i++

	for first := true; ; first = false {
		i = len(b) - len(skipSpace(b[i:]))
		if i == len(b) {
			return 0, errShort
		}

		if b[i] == '}' {
			return i + 1, nil
		}

		if !first {
			if b[i] != ',' {
				return 0, fmt.Errorf("%w: want ',' or '}' in an object, got %q", errSyntax, b[i])
			}

			i = len(b) - len(skipSpace(b[i+1:]))
			if i == len(b) {
				return 0, errShort
			}
		}

		if b[i] != '"' {
			return 0, fmt.Errorf("%w: want a key, got %q", errSyntax, b[i])
		}

		n, err := stringEnd(b[i:])
		if err != nil {
			return 0, err
		}

		key := b[i+1 : i+n-1]

		i = len(b) - len(skipSpace(b[i+n:]))
		if i == len(b) {
			return 0, errShort
		}

		if b[i] != ':' {
			return 0, fmt.Errorf("%w: want ':' after %q", errSyntax, key)
		}

		i = len(b) - len(skipSpace(b[i+1:]))

		n, err = valueEnd(b[i:])
		if err != nil {
			return 0, err
		}

		if err := f(key, b[i:i+n]); err != nil {
			return 0, err
		}

		i += n
	}
}

// jsonText returns the text of a JSON string value: the bytes between the quotes when there is
// no escape (no allocation), else the decoded string's bytes. null and an absent value (nil) are
// empty.
func jsonText(v []byte) ([]byte, error) {
	switch {
	case v == nil, string(v) == "null":
		return nil, nil
	case len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"':
		return nil, fmt.Errorf("%w: want a string, got %.20s", errSyntax, v)
	case bytes.IndexByte(v, '\\') < 0:
		return v[1 : len(v)-1], nil
	}

	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", errSyntax, err)
	}

	return []byte(s), nil
}

// jsonString decodes a JSON string value; null is the empty string.
func jsonString(v []byte) (string, error) {
	t, err := jsonText(v)
	return string(t), err
}

// jsonTime decodes a JSON RFC 3339 time as UnixNano; null is 0. Kopia writes UTC times with
// nanoseconds, which parseRFC3339 reads without allocating; anything else goes through
// time.Parse.
func jsonTime(v []byte) (int64, error) {
	t, err := jsonText(v)
	if err != nil || len(t) == 0 {
		return 0, err
	}

	if n, ok := parseRFC3339(t); ok {
		return n, nil
	}

	parsed, err := time.Parse(time.RFC3339Nano, string(t))
	if err != nil {
		return 0, fmt.Errorf("time %q: %w", t, err)
	}

	return parsed.UnixNano(), nil
}

// parseRFC3339 reads YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM); ok is false for anything else
// (including out-of-range fields), which the caller hands to time.Parse.
func parseRFC3339(b []byte) (unixNano int64, ok bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}

	num := func(s []byte) (int, bool) {
		n := 0

		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}

			n = n*10 + int(c-'0')
		}

		return n, true
	}

	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])

	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}

	i, nsec := 19, 0

	if b[i] == '.' {
		i++
		digits := 0

		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if digits < 9 {
				nsec = nsec*10 + int(b[i]-'0')
				digits++
			}

			i++
		}

		if digits == 0 {
			return 0, false
		}

		for ; digits < 9; digits++ {
			nsec *= 10
		}
	}

	offset := 0

	switch {
	case i == len(b)-1 && b[i] == 'Z':
	case i == len(b)-6 && (b[i] == '+' || b[i] == '-') && b[i+3] == ':':
		h, okh := num(b[i+1 : i+3])
		m, okm := num(b[i+4 : i+6])

		if !okh || !okm || h > 23 || m > 59 {
			return 0, false
		}

		offset = (h*60 + m) * 60
		if b[i] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}

	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)

	return t.UnixNano() - int64(offset)*int64(time.Second), true
}

func daysIn(m time.Month, year int) int {
	if m == time.February && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		return 29
	}

	return [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
}

// jsonInt decodes a JSON integer; null is 0.
func jsonInt(v []byte) (int64, error) {
	if string(v) == "null" {
		return 0, nil
	}

	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("integer %.20s: %w", v, err)
	}

	return n, nil
}

// jsonBool decodes a JSON boolean; null is false.
func jsonBool(v []byte) (bool, error) {
	switch string(v) {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	}

	return false, fmt.Errorf("%w: want a boolean, got %.20s", errSyntax, v)
}
