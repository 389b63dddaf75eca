package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"time"
)

// pollInterval is how often Follow looks for new entries on a log opened
// with OpenReadOnly (a writer's Log wakes its followers directly).
const pollInterval = 250 * time.Millisecond

// recordSpan returns the byte range of entry seq's record.
func (l *Log) recordSpan(seq uint64) (start, end int64, err error) {
	if seq > 0 {
		if start, err = readIndex(l.index, seq-1); err != nil {
			return 0, 0, err
		}
	}
	if end, err = readIndex(l.index, seq); err != nil {
		return 0, 0, err
	}
	return start, end, nil
}

// readEntry reads and checks entry seq and returns it with its sealed
// detail bytes.
func (l *Log) readEntry(seq uint64) (Entry, []byte, error) {
	if n := l.Size(); seq >= n {
		return Entry{}, nil, fmt.Errorf("%w: entry %d of %s (the log has %d entries)", ErrNotFound, seq, l.dir, n)
	}
	start, end, err := l.recordSpan(seq)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("entry %d of %s: %w", seq, l.dir, err)
	}
	a, b, err := readRecordAt(l.entries, recEntry, start, end)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("entry %d of %s: %w", seq, l.dir, err)
	}
	e, err := ParseEntry(a)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("entry %d of %s: %w", seq, l.dir, err)
	}
	if e.Seq != seq {
		return Entry{}, nil, fmt.Errorf("%w: entry %d of %s has sequence number %d", ErrCorrupted, seq, l.dir, e.Seq)
	}
	if err := checkDetail(e, b); err != nil {
		return Entry{}, nil, err
	}
	return e, b, nil
}

// Entry returns entry seq, checked against its record's CRC (the tree is
// checked by [Verify] and by inclusion proofs). It fails with [ErrNotFound] if
// the log has no such entry.
func (l *Log) Entry(ctx context.Context, seq uint64) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	e, _, err := l.readEntry(seq)
	return e, err
}

// SealedDetail returns the sealed detail bytes of entry seq as stored (nil
// if the entry has none). Opening them needs the site's [Sealer]
// (OpenDetail).
func (l *Log) SealedDetail(ctx context.Context, seq uint64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, b, err := l.readEntry(seq)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	return b, nil
}

// OpenDetail returns the plaintext detail of entry seq, opened with the
// log's [Sealer]. The caller owns it and should wipe it when done.
func (l *Log) OpenDetail(ctx context.Context, seq uint64) ([]byte, error) {
	if l.cfg.Sealer == nil {
		return nil, fmt.Errorf("%w: %s has no Sealer to open details with", ErrInvalidConfig, l.dir)
	}
	e, b, err := l.readEntry(seq)
	if err != nil {
		return nil, err
	}
	if e.Detail == nil {
		return nil, fmt.Errorf("%w: entry %d of %s has no detail part", ErrNotFound, seq, l.dir)
	}
	pt, err := l.cfg.Sealer.Open(ctx, e.Detail.ID, b)
	if err != nil {
		return nil, fmt.Errorf("audit: open the detail of entry %d of %s: %w", seq, l.dir, err)
	}
	return pt, nil
}

// scanEntries calls fn for entries [from, to) in order, reading the
// entries file sequentially.
func (l *Log) scanEntries(ctx context.Context, from, to uint64, fn func(Entry) error) error {
	if from >= to {
		return nil
	}
	start, _, err := l.recordSpan(from)
	if err != nil {
		return err
	}
	_, end, err := l.recordSpan(to - 1)
	if err != nil {
		return err
	}
	sc := newScanner(l.entries, start, end)
	for seq := from; seq < to; seq++ {
		if seq%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ok, err := sc.next()
		if err == nil && !ok {
			err = fmt.Errorf("%w: %s ends before entry %d", ErrCorrupted, entriesName, seq)
		}
		if err != nil {
			return fmt.Errorf("entry %d of %s: %w", seq, l.dir, err)
		}
		e, err := checkEntryRecord(sc, seq, time.Time{})
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Tail returns the last n entries (fewer if the log is shorter), oldest
// first.
func (l *Log) Tail(ctx context.Context, n int) ([]Entry, error) {
	size := l.Size()
	from := uint64(0)
	if n < 0 {
		n = 0
	}
	if uint64(n) < size {
		from = size - uint64(n)
	}
	out := make([]Entry, 0, size-from)
	err := l.scanEntries(ctx, from, size, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// Follow calls fn for every entry from sequence number from on, in order,
// and then for each new entry as it is committed, until ctx ends, fn
// returns an error, or the log is closed. It returns ctx's error, fn's
// error, or [ErrClosed].
func (l *Log) Follow(ctx context.Context, from uint64, fn func(Entry) error) error {
	next := from
	for {
		if n := l.Size(); next < n {
			if err := l.scanEntries(ctx, next, n, fn); err != nil {
				return err
			}
			next = n
			continue
		}
		if l.readOnly {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pollInterval):
			}
			if err := l.refresh(); err != nil {
				return err
			}
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return fmt.Errorf("audit: follow %s: %w", l.dir, ErrClosed)
		}
		ch := l.changed
		l.mu.Unlock()
		if next < l.Size() {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Export writes every entry appended at or after since as JSON Lines: each
// line is an entry's canonical JSON (FORMAT.md), the exact bytes its leaf
// hash covers, so a SIEM can also check them against inclusion proofs. It
// returns the number of entries written.
func (l *Log) Export(ctx context.Context, w io.Writer, since time.Time) (int, error) {
	size := l.Size()
	// Entry times never decrease, so the first entry to export can be
	// found by binary search.
	var searchErr error
	first := sort.Search(int(size), func(i int) bool {
		if searchErr != nil {
			return true
		}
		e, _, err := l.readEntry(uint64(i))
		if err != nil {
			searchErr = err
			return true
		}
		return !e.Time.Before(since)
	})
	if searchErr != nil {
		return 0, searchErr
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	n := 0
	err := l.scanEntries(ctx, uint64(first), size, func(e Entry) error {
		if _, err := bw.Write(e.raw); err != nil {
			return err
		}
		n++
		return bw.WriteByte('\n')
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}
