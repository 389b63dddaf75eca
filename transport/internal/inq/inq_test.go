package inq

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestQueue_ServesSendersInTurn(t *testing.T) {
	q := New[string, int](100, 1<<20)
	ctx := context.Background()
	for i := range 5 {
		if err := q.Push(ctx, "flood", i, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Push(ctx, "honest", 100, 1); err != nil {
		t.Fatal(err)
	}
	var got []int
	for range 6 {
		v, err := q.Pop(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	want := []int{0, 100, 1, 2, 3, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("popped %v, want %v", got, want)
		}
	}
}

func TestQueue_BoundsEachSender(t *testing.T) {
	for _, tc := range []struct {
		name     string
		count    int
		bytes    int64
		weight   int64
		accepted int
	}{
		{"by count", 3, 1 << 20, 1, 3},
		{"by bytes", 100, 10, 4, 2},
		{"one heavy item when empty", 100, 10, 50, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := New[string, int](tc.count, tc.bytes)
			n := 0
			for ; n < 1000; n++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				err := q.Push(ctx, "a", n, tc.weight)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if n != tc.accepted {
				t.Fatalf("accepted %d, want %d", n, tc.accepted)
			}
			if q.Len("a") != tc.accepted {
				t.Fatalf("Len %d, want %d", q.Len("a"), tc.accepted)
			}
			// Another sender is not affected.
			if err := q.Push(context.Background(), "b", -1, 1); err != nil {
				t.Fatal(err)
			}
			// A pop makes room for a waiting push.
			done := make(chan error, 1)
			go func() { done <- q.Push(context.Background(), "a", 999, tc.weight) }()
			if _, err := q.Pop(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a pop did not let a waiting push in")
			}
		})
	}
}

func TestQueue_Close(t *testing.T) {
	q := New[string, int](1, 1<<20)
	if err := q.Push(context.Background(), "a", 1, 1); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); errs <- q.Push(context.Background(), "a", 2, 1) }()
	empty := New[string, int](1, 1)
	wg.Add(1)
	go func() { defer wg.Done(); _, err := empty.Pop(context.Background()); errs <- err }()
	time.Sleep(20 * time.Millisecond)
	q.Close()
	empty.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("waiting call after Close: %v, want ErrClosed", err)
		}
	}
	if _, err := q.Pop(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pop after Close: %v, want ErrClosed", err)
	}
}

func TestQueue_PopHonoursContext(t *testing.T) {
	q := New[string, int](1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := q.Pop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
}
