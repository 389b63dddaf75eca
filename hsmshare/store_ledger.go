package hsmshare

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The store's ledgers live on the token of its seal key (a rotation never
// changes the token). Their names on the token are "<party>/<name>", so the
// stores of several parties can share one token.

func (s *Store) ledgerName(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("hsmshare: ledger name: %w", err)
	}
	return s.party + "/" + name, nil
}

// ledger returns the cached handle of the store's ledger name, looking it up
// on the token the first time. Caller holds a begin.
func (s *Store) ledger(ctx context.Context, name string) (*Ledger, error) {
	full, err := s.ledgerName(name)
	if err != nil {
		return nil, err
	}
	s.ledgerMu.Lock()
	l := s.ledgers[full]
	s.ledgerMu.Unlock()
	if l != nil {
		return l, nil
	}
	l, err = s.key.tok.Ledger(ctx, full)
	if err != nil {
		return nil, err
	}
	s.ledgerMu.Lock()
	if s.ledgers == nil {
		s.ledgers = make(map[string]*Ledger)
	}
	if have := s.ledgers[full]; have != nil {
		l = have
	} else {
		s.ledgers[full] = l
	}
	s.ledgerMu.Unlock()
	return l, nil
}

// CreateLedger creates the ledger name (a store name, see [ValidName]) with
// slots unused slots on the store's token. See [Ledger].
func (s *Store) CreateLedger(ctx context.Context, name string, slots int) error {
	full, err := s.ledgerName(name)
	if err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	l, err := s.key.tok.CreateLedger(ctx, full, slots)
	if err != nil {
		return fmt.Errorf("hsmshare: store %s: %w", s.dir, err)
	}
	s.ledgerMu.Lock()
	if s.ledgers == nil {
		s.ledgers = make(map[string]*Ledger)
	}
	s.ledgers[full] = l
	s.ledgerMu.Unlock()
	return nil
}

// UseLedger marks slots of the ledger name used, all or none (see
// [Ledger.Use]), and returns how many stay unused. A missing ledger gives an
// error satisfying errors.Is(err, fs.ErrNotExist): whatever referred to it
// must count as used.
func (s *Store) UseLedger(ctx context.Context, name string, slots []int) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.end()
	l, err := s.ledger(ctx, name)
	if err != nil {
		return 0, err
	}
	left, err := l.Use(ctx, slots)
	if errors.Is(err, ErrLedgerNotFound) {
		s.forgetLedger(l.name)
	}
	return left, err
}

// LedgerUsed reports which slots of the ledger name are used. A missing
// ledger gives an error satisfying errors.Is(err, fs.ErrNotExist).
func (s *Store) LedgerUsed(ctx context.Context, name string) ([]bool, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	l, err := s.ledger(ctx, name)
	if err != nil {
		return nil, err
	}
	used, err := l.Used(ctx)
	if errors.Is(err, ErrLedgerNotFound) {
		s.forgetLedger(l.name)
	}
	return used, err
}

// DeleteLedger destroys the ledger name. A missing ledger is not an error.
func (s *Store) DeleteLedger(ctx context.Context, name string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	l, err := s.ledger(ctx, name)
	if errors.Is(err, ErrLedgerNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.forgetLedger(l.name)
	return l.Destroy(ctx)
}

// Ledgers lists the names of this store's ledgers (for this party), sorted.
func (s *Store) Ledgers(ctx context.Context) ([]string, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	prefix := s.party + "/"
	names, err := s.key.tok.Ledgers(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		short := strings.TrimPrefix(n, prefix)
		if ValidName(short) == nil {
			out = append(out, short)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (s *Store) forgetLedger(full string) {
	s.ledgerMu.Lock()
	delete(s.ledgers, full)
	s.ledgerMu.Unlock()
}
