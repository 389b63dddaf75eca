package audit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// Record framing shared by the entries and checkpoints files (FORMAT.md):
// type (1) || u32 len(a) || u32 len(b) || a || b || u32 CRC-32C.
const (
	recEntry      = 0x01
	recCheckpoint = 0x02

	recHeaderLen  = 9
	recTrailerLen = 4
	// maxNoteSize bounds a stored signed note.
	maxNoteSize = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends one framed record to dst.
func appendRecord(dst []byte, typ byte, a, b []byte) []byte {
	start := len(dst)
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(a)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	dst = append(dst, a...)
	dst = append(dst, b...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func recordLen(a, b int) int64 { return int64(recHeaderLen + a + b + recTrailerLen) }

// limits returns the bounds of the two parts of a record type.
func limits(typ byte) (maxA, maxB int, ok bool) {
	switch typ {
	case recEntry:
		return MaxEntrySize, MaxDetailSize, true
	case recCheckpoint:
		return maxNoteSize, 0, true
	}
	return 0, 0, false
}

// recordError is a record that could not be read at Off. Torn reports
// whether it looks like what a crash during an append leaves at the end of
// the file (see FORMAT.md, Recovery) rather than damage or editing.
type recordError struct {
	Off    int64
	Torn   bool
	Reason string
}

func (e *recordError) Error() string {
	return fmt.Sprintf("record at byte %d: %s", e.Off, e.Reason)
}

// scanner reads records sequentially from a file, from a start offset up
// to the file's size when the scanner was made.
type scanner struct {
	f    *os.File
	r    *bufio.Reader
	off  int64 // offset of the next record
	size int64
	buf  []byte

	typ  byte
	a, b []byte // parts of the current record, valid until the next call
	end  int64  // end offset of the current record
}

func newScanner(f *os.File, start, size int64) *scanner {
	return &scanner{
		f:    f,
		r:    bufio.NewReaderSize(io.NewSectionReader(f, start, size-start), 1<<20),
		off:  start,
		size: size,
	}
}

// next reads the next record. It returns false at the end of the file;
// err is nil then, or a *recordError, or an I/O error.
func (s *scanner) next() (bool, error) {
	if s.off >= s.size {
		return false, nil
	}
	var hdr [recHeaderLen]byte
	if s.size-s.off < recHeaderLen {
		return false, &recordError{Off: s.off, Torn: true, Reason: fmt.Sprintf("incomplete header (%d bytes before the end of the file)", s.size-s.off)}
	}
	if _, err := io.ReadFull(s.r, hdr[:]); err != nil {
		return false, err
	}
	typ := hdr[0]
	la := int(binary.BigEndian.Uint32(hdr[1:5]))
	lb := int(binary.BigEndian.Uint32(hdr[5:9]))
	maxA, maxB, ok := limits(typ)
	if !ok || la < 1 || la > maxA || lb > maxB {
		return false, s.bad(fmt.Sprintf("invalid header (type %#02x, lengths %d and %d)", typ, la, lb), false)
	}
	end := s.off + recordLen(la, lb)
	if end > s.size {
		return false, &recordError{Off: s.off, Torn: true, Reason: fmt.Sprintf("incomplete record (%d bytes, %d before the end of the file)", end-s.off, s.size-s.off)}
	}
	n := la + lb + recTrailerLen
	if cap(s.buf) < recHeaderLen+n {
		s.buf = make([]byte, recHeaderLen+n)
	}
	buf := s.buf[:recHeaderLen+n]
	copy(buf, hdr[:])
	if _, err := io.ReadFull(s.r, buf[recHeaderLen:]); err != nil {
		return false, err
	}
	body := buf[:len(buf)-recTrailerLen]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(buf[len(buf)-recTrailerLen:]) {
		return false, s.bad("CRC-32C mismatch", end == s.size)
	}
	s.typ = typ
	s.a = body[recHeaderLen : recHeaderLen+la]
	s.b = body[recHeaderLen+la:]
	s.end = end
	s.off = end
	return true, nil
}

// bad reports a damaged record at s.off. It is torn if lastInFile says so
// or if nothing but zero bytes follow it (a file extended by a crash whose
// data never reached the disk).
func (s *scanner) bad(reason string, lastInFile bool) error {
	torn := lastInFile
	if !torn {
		z, err := allZero(s.f, s.off, s.size)
		if err != nil {
			return err
		}
		torn = z
	}
	return &recordError{Off: s.off, Torn: torn, Reason: reason}
}

// allZero reports whether f holds only zero bytes in [from, to).
func allZero(f *os.File, from, to int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for off := from; off < to; {
		n := int64(len(buf))
		if to-off < n {
			n = to - off
		}
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return false, err
		}
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		off += n
	}
	return true, nil
}

// readRecordAt reads the record of type typ that spans [start, end) of f.
func readRecordAt(f *os.File, typ byte, start, end int64) (a, b []byte, err error) {
	if end-start < recHeaderLen+recTrailerLen+1 || end-start > recordLen(MaxEntrySize, MaxDetailSize) {
		return nil, nil, fmt.Errorf("%w: record at byte %d has impossible length %d", ErrCorrupted, start, end-start)
	}
	buf := make([]byte, end-start)
	if _, err := f.ReadAt(buf, start); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%w: record at byte %d extends past the end of the file", ErrCorrupted, start)
		}
		return nil, nil, err
	}
	la := int(binary.BigEndian.Uint32(buf[1:5]))
	lb := int(binary.BigEndian.Uint32(buf[5:9]))
	if buf[0] != typ || int64(recordLen(la, lb)) != end-start {
		return nil, nil, fmt.Errorf("%w: record at byte %d does not match the index", ErrCorrupted, start)
	}
	body := buf[:len(buf)-recTrailerLen]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(buf[len(buf)-recTrailerLen:]) {
		return nil, nil, fmt.Errorf("%w: record at byte %d fails its CRC-32C", ErrCorrupted, start)
	}
	return body[recHeaderLen : recHeaderLen+la], body[recHeaderLen+la:], nil
}
