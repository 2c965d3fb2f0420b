package dockerrun

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/dockerrun/dockerrun/internal/jsonscan"
	"github.com/dockerrun/dockerrun/internal/protocol"
)

// Docker's multiplexed attach stream is a sequence of frames, each an 8-byte
// header followed by a payload:
//
//	[stream, 0, 0, 0, size (uint32, big endian)] payload...
//
// where stream is 0 (stdin), 1 (stdout), 2 (stderr) or 3 (an error from the
// daemon itself).
const frameHeaderSize = 8

const (
	streamStdin  = 0
	streamStdout = 1
	streamStderr = 2
	streamSystem = 3
)

var (
	// errOutputLimit: the container wrote more than the output limit.
	errOutputLimit = errors.New("output limit exceeded")
	// errBadFrame: a frame header that no daemon sends.
	errBadFrame = errors.New("malformed stream frame header")
)

// demux reads Docker's multiplexed stream with hard caps: it never holds more
// than limit bytes of payload, and it validates each frame header before
// allocating anything for it. It stops as soon as stdout holds one complete
// JSON object, so that the answer does not wait for the container to exit.
type demux struct {
	r     io.Reader
	limit int64 // bytes of stdout and stderr together

	stdout []byte
	stderr []byte
	system []byte
	total  int64

	scan   objectScanner
	hdr    [frameHeaderSize]byte
	resEnd int // end of the first complete object in stdout, 0 if none yet
}

func newDemux(r io.Reader, limit int64) *demux {
	return &demux{r: r, limit: limit}
}

// run reads frames until stdout holds a complete JSON object (done is true),
// the stream ends (io.EOF, done false), or an error: errOutputLimit,
// errBadFrame, or the reader's error.
func (d *demux) run() (done bool, err error) {
	for {
		if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return false, fmt.Errorf("%w: stream ended inside a frame header", errBadFrame)
			}
			return false, err
		}
		stream := d.hdr[0]
		size := int64(binary.BigEndian.Uint32(d.hdr[4:]))
		if stream > streamSystem || d.hdr[1] != 0 || d.hdr[2] != 0 || d.hdr[3] != 0 {
			return false, fmt.Errorf("%w: % x", errBadFrame, d.hdr)
		}
		if d.total+size > d.limit {
			// Keep what fits, for the error message, then stop.
			d.readInto(stream, d.limit-d.total)
			return false, errOutputLimit
		}
		if err := d.readInto(stream, size); err != nil {
			return false, err
		}
		if stream == streamStdout && d.resEnd == 0 {
			if end := d.scan.feed(d.stdout); end > 0 {
				d.resEnd = end
				return true, nil
			}
		}
	}
}

// readInto appends n payload bytes of the given stream to its buffer. Stdin
// frames (which a daemon does not send on attach) are counted and dropped.
func (d *demux) readInto(stream byte, n int64) error {
	if n <= 0 {
		return nil
	}
	d.total += n
	var dst *[]byte
	switch stream {
	case streamStdout:
		dst = &d.stdout
	case streamStderr:
		dst = &d.stderr
	case streamSystem:
		dst = &d.system
	default:
		if _, err := io.CopyN(io.Discard, d.r, n); err != nil {
			return truncatedFrame(err)
		}
		return nil
	}
	buf := *dst
	if need := len(buf) + int(n); need > cap(buf) {
		// Grow geometrically, but never past the output limit.
		grown := make([]byte, len(buf), min(max(need, 2*cap(buf), 512), int(d.limit)))
		copy(grown, buf)
		buf = grown
	}
	got, err := io.ReadFull(d.r, buf[len(buf):len(buf)+int(n)])
	*dst = buf[:len(buf)+got]
	if err != nil {
		return truncatedFrame(err)
	}
	return nil
}

func truncatedFrame(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ended inside a frame", errBadFrame)
	}
	return err
}

// result is the first complete JSON object on stdout, or nil.
func (d *demux) result() []byte {
	if d.resEnd == 0 {
		return nil
	}
	return bytes.TrimLeft(d.stdout[:d.resEnd], " \t\r\n")
}

// objectScanner finds the end of the first top-level JSON object in a
// growing buffer, incrementally: each byte is looked at once. It checks only
// the nesting of braces, brackets and strings; encoding/json validates the
// object afterwards.
type objectScanner struct {
	pos     int              // bytes of the buffer already scanned
	nest    jsonscan.Nesting // of the object, once started
	started bool             // the object's '{' was seen
	invalid bool             // the first non-space byte was not '{'
}

// feed scans buf (which starts with the bytes already fed) and returns the
// end offset of the first complete top-level object, or 0.
func (s *objectScanner) feed(buf []byte) int {
	if s.invalid {
		return 0
	}
	for ; s.pos < len(buf); s.pos++ {
		c := buf[s.pos]
		if !s.started {
			switch c {
			case ' ', '\t', '\r', '\n':
				continue
			case '{':
				s.started = true
			default:
				s.invalid = true
				return 0
			}
		}
		if s.nest.Step(c) < 0 && s.nest.Depth == 0 {
			s.pos++
			return s.pos
		}
	}
	return 0
}

// decodeResult checks that raw is one JSON object with string fields stdout,
// stderr and error, and returns it as a Result. Other fields are not looked
// at: they pass through in Result.Raw.
func decodeResult(raw []byte) (*Result, error) {
	stdout, stderr, errText, err := protocol.CheckAnswer(raw)
	if err != nil {
		return nil, err
	}
	return &Result{Stdout: stdout, Stderr: stderr, Error: errText, Raw: json.RawMessage(bytes.Clone(raw))}, nil
}

// excerpt returns at most n bytes of b as valid UTF-8 text, marking a cut.
func excerpt(b []byte, n int) string {
	cut := len(b) > n
	if cut {
		// Cut on a rune boundary: a valid rune that the cut would split is
		// left out rather than shown as U+FFFD, which would claim that the
		// output was not UTF-8.
		end := n
		for i := n - 1; i >= 0 && i > n-utf8.UTFMax; i-- {
			if utf8.RuneStart(b[i]) {
				// An invalid byte decodes to width 1 and stays, as U+FFFD.
				if _, size := utf8.DecodeRune(b[i:]); i+size > n {
					end = i
				}
				break
			}
		}
		b = b[:end]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if cut {
		s += " [cut]"
	}
	return s
}
