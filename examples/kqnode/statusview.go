package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
)

// peerNames returns the names the peer file gives the sites, by peer ID.
func peerNames(peers []transport.Peer) map[string]string {
	out := map[string]string{}
	for _, p := range peers {
		if p.Name != "" {
			out[p.ID.String()] = p.Name
		}
	}
	return out
}

// statusView renders a status for a person: one line per item, whatever
// the errors inside it hold, sites by their peer-file name when they have
// one.
type statusView struct {
	w     io.Writer
	names map[string]string
}

// site names a site: its name from the peer file, or its peer ID.
func (v statusView) site(id string) string {
	if n := v.names[id]; n != "" {
		return n
	}
	return id
}

func (v statusView) sites(ids []tss.PartyID) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = v.site(string(id))
	}
	return strings.Join(out, ",")
}

// line prints the non-empty parts separated by one space.
func (v statusView) line(parts ...string) {
	fmt.Fprintln(v.w, words(parts...))
}

// words joins the non-empty parts with one space.
func words(parts ...string) string {
	kept := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, " ")
}

// oneLine makes text from a site or a peer (an error, possibly several
// lines) fit on one line: runs of white space, newlines included, become
// one space and other control characters are replaced.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return '?'
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func ago(t time.Time) string { return time.Since(t).Round(time.Second).String() + " ago" }

func ms(n int64) string { return (time.Duration(n) * time.Millisecond).String() }

// printStatus renders a status for a person.
func printStatus(w io.Writer, st *statusResult) {
	v := statusView{w: w, names: st.Names}
	self := string(st.PeerID)
	if n := st.Names[self]; n != "" {
		self = n + " " + self
	}
	v.line("site     ", self, fmt.Sprintf("(up %s)", (time.Duration(st.UptimeMS)*time.Millisecond).Round(time.Second)))
	v.line("api      ", st.API)
	v.line("listen   ", strings.Join(st.ListenAddrs, " "))
	for _, warn := range st.Warnings {
		v.line("WARNING  ", oneLine(warn))
	}
	v.line("peers    ", fmt.Sprintf("%d of %d connected now, %d reachable at the last exchange", st.PeersConnected, len(st.Peers), st.PeersReachable))
	for _, p := range st.Peers {
		state := "not contacted yet"
		if p.Reachable != nil {
			state = "reachable"
			if !*p.Reachable {
				state = "UNREACHABLE: " + oneLine(p.LastError)
			}
		}
		if p.Bundles {
			// Reached through files: "reachable" means queued for export.
			state = fmt.Sprintf("bundle files, %d messages waiting for `kqnode offline export`", p.Pending)
		} else {
			state = map[bool]string{true: "connected, ", false: "no connection, "}[p.Connected] + state
		}
		if p.LastSeen != nil {
			state += ", last message " + ago(*p.LastSeen)
		}
		if p.Security != "" {
			state += ", " + p.Security
		}
		v.line(" ", st.Names[string(p.PeerID)], string(p.PeerID)+":", state)
	}
	if n := st.Network; n != nil {
		refused := fmt.Sprintf("%d connections refused", n.ConnectionsRefused)
		if n.ConnectionsRefused > 0 {
			refused += " (peers outside the committee: the log names them; a committee member's peer ID may be missing from the peer file or mistyped)"
		}
		v.line("network  ", fmt.Sprintf("%d messages sent, %d received, %d dial failures,", n.MessagesSent, n.MessagesReceived, n.DialFailures), refused)
	}
	pp := st.PreParams
	gen := "background generation on"
	if !pp.Generation {
		gen = "background generation off"
	}
	if pp.Pauses > 0 {
		gen += fmt.Sprintf(", paused %d times for signing", pp.Pauses)
	}
	if pp.Paused {
		gen += ", paused now"
	}
	v.line("preparams", fmt.Sprintf("%d ready of target %d, %d generating, %d generated (%s)", pp.Ready, pp.Target, pp.Generating, pp.Generated, gen))
	if pp.Generating > 0 || pp.MeanGenerationMS > 0 {
		v.line("  timing:", preParamsEstimate(pp.PreParamsStatus))
	}
	if pp.LastError != "" {
		v.line("  last error:", oneLine(pp.LastError))
	}
	v.line("keys     ", fmt.Sprint(len(st.Keys)))
	for _, k := range st.Keys {
		created := ""
		if !k.Created.IsZero() {
			created = "created " + k.Created.UTC().Format("2006-01-02 15:04 UTC")
		}
		label := ""
		if k.Label != "" {
			label = strconv.Quote(k.Label)
		}
		v.line(" ", k.KeyID, label, fmt.Sprintf("%d-of-%d", k.Threshold, len(k.Parties)), fmt.Sprintf("epoch %d", k.Epoch), k.PublicKey, created)
		v.line("    parties:", v.sites(k.Parties))
		up := "can sign now"
		if len(k.SignersUp) < k.Threshold {
			up = fmt.Sprintf("CANNOT sign now: %d of the %d sites it needs are up", len(k.SignersUp), k.Threshold)
		}
		v.line("    sites up:", v.sites(k.SignersUp), "("+up+")")
		for _, p := range k.Pools {
			owner := "(own)"
			if p.Initiator != st.PeerID {
				owner = "(held for " + v.site(string(p.Initiator)) + ")"
			}
			v.line("    pool", v.sites(p.Signers), "path", p.Path, owner+":", fmt.Sprintf("%d ready, %d reserved, %d being made (made %d, used %d, discarded %d)",
				p.Ready, p.Reserved, p.Making, p.Made, p.Used, p.Discarded))
			if p.Foreign > 0 {
				v.line("      refused", fmt.Sprintf("%d", p.Foreign), "attempts by other signers to spend these presignatures (last by", v.site(string(p.ForeignBy))+")")
			}
			if p.Error != "" {
				v.line("      error:", oneLine(p.Error))
			}
		}
	}
	for _, r := range st.Reshares {
		what := fmt.Sprintf("to %d-of-%d %s", r.NewThreshold, len(r.NewParties), v.sites(r.NewParties))
		if r.Initiator != "" {
			what += ", proposed by " + v.site(string(r.Initiator))
		}
		if r.PendingEpoch != 0 {
			what += fmt.Sprintf(", epoch %d", r.PendingEpoch)
		}
		if !r.Expires.IsZero() && r.Phase != "committed" {
			what += ", authorization expires " + r.Expires.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		v.line("reshare  ", r.KeyID, r.Phase+":", what, "("+ago(r.Updated)+")")
	}
	running, finished, steps := withSteps(st.Operations, st.Finished)
	for _, o := range running {
		v.line("running  ", fmt.Sprintf("#%d", o.ID), o.Kind, o.KeyID, "for", ms(o.ElapsedMS), oneLine(o.Detail), v.steps(steps[o.ID]))
	}
	for _, s := range st.Sessions {
		where := s.Phase
		if s.Round > 0 {
			where = fmt.Sprintf("%s, round %d", s.Phase, s.Round)
		}
		if len(s.Waiting) > 0 {
			where += ", waiting for " + v.sites(s.Waiting)
		}
		v.line("session  ", s.ID.Short(), string(s.Op), s.KeyID, "("+where+")", "for", time.Since(s.Started).Round(time.Second).String())
	}
	for _, o := range finished {
		res := "ok"
		if o.Error != "" {
			res = "FAILED: " + oneLine(o.Error)
		}
		v.line(words("finished ", fmt.Sprintf("#%d", o.ID), o.Kind, o.KeyID, "in", ms(o.ElapsedMS), oneLine(o.Detail), v.steps(steps[o.ID]))+":", res)
	}
	if st.EngineError != "" {
		v.line("ENGINE STOPPED:", oneLine(st.EngineError))
	}
}

// withSteps sorts the running and the finished operations by ID and folds
// each step (a signature of a sign-psbt or sign-eth) into the operation it
// belongs to, when that one is listed too: it returns the operations to
// list and the steps of each.
func withSteps(running, finished []keyquorum.Operation) (runTop, finTop []keyquorum.Operation, steps map[uint64][]keyquorum.Operation) {
	listed := map[uint64]bool{}
	for _, o := range slices.Concat(running, finished) {
		listed[o.ID] = true
	}
	steps = map[uint64][]keyquorum.Operation{}
	fold := func(ops []keyquorum.Operation) []keyquorum.Operation {
		var top []keyquorum.Operation
		for _, o := range ops {
			if o.Parent != 0 && listed[o.Parent] {
				steps[o.Parent] = append(steps[o.Parent], o)
			} else {
				top = append(top, o)
			}
		}
		slices.SortFunc(top, func(a, b keyquorum.Operation) int { return cmp.Compare(a.ID, b.ID) })
		return top
	}
	runTop, finTop = fold(running), fold(finished)
	for _, s := range steps {
		slices.SortFunc(s, func(a, b keyquorum.Operation) int { return cmp.Compare(a.ID, b.ID) })
	}
	return runTop, finTop, steps
}

// steps describes the steps of an operation: "(steps: #2 sign gg20)".
func (v statusView) steps(ops []keyquorum.Operation) string {
	if len(ops) == 0 {
		return ""
	}
	out := make([]string, len(ops))
	for i, o := range ops {
		s := words(fmt.Sprintf("#%d", o.ID), o.Kind, oneLine(o.Detail))
		if o.Error != "" {
			s += " failed"
		} else if !o.Done {
			s += " running"
		}
		out[i] = s
	}
	return "(steps: " + strings.Join(out, "; ") + ")"
}
