package main

// The README's "Running three sites by hand", run as written: its shell
// blocks are taken from README.md and run by bash, statement by statement,
// and what each statement prints is held against what the README says it
// prints.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// The marks of the section's blocks in README.md: a fenced block right
// after runMark is run; one after an outputMark is what the first run
// statement starting with the mark's text prints on stdout.
const (
	readmeNodeStart = "## Running three sites by hand"
	readmeNodeEnd   = "## kqnode reference"
	runMark         = "<!-- run -->"
	outputMarkOpen  = "<!-- output of: "
	outputMarkClose = " -->"
	readmeModule    = "/usr/lib/softhsm/libsofthsm2.so"
)

// readmeStatement is one shell statement of a run block with what the
// README says of its result.
type readmeStatement struct {
	line   int    // in README.md
	text   string // the statement as the README writes it
	expect []string
	exit   int
}

// readmeOutput is an output block: what a statement prints.
type readmeOutput struct {
	line   int
	prefix string // the statement it belongs to starts with this
	text   string
}

// readmeByHand returns the run statements and output blocks of the
// README's by-hand section.
func readmeByHand(t *testing.T) ([]readmeStatement, []readmeOutput) {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	start, end := -1, -1
	for i, l := range lines {
		if l == readmeNodeStart {
			start = i
		}
		if l == readmeNodeEnd && start >= 0 {
			end = i
			break
		}
	}
	if start < 0 || end < 0 {
		t.Fatalf("README.md has no section between %q and %q", readmeNodeStart, readmeNodeEnd)
	}
	var stmts []readmeStatement
	var outs []readmeOutput
	for i := start; i < end; i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == runMark:
			if i+1 >= end || lines[i+1] != "```sh" {
				t.Fatalf("README.md:%d: %s is not followed by a ```sh block", i+1, runMark)
			}
			i += 2
			j := i
			for j < end && lines[j] != "```" {
				j++
			}
			stmts = append(stmts, splitStatements(t, i+1, lines[i:j])...)
			i = j
		case strings.HasPrefix(l, outputMarkOpen) && strings.HasSuffix(l, outputMarkClose):
			prefix := strings.TrimSuffix(strings.TrimPrefix(l, outputMarkOpen), outputMarkClose)
			if i+1 >= end || lines[i+1] != "```" {
				t.Fatalf("README.md:%d: the output mark is not followed by a ``` block", i+1)
			}
			j := i + 2
			for j < end && lines[j] != "```" {
				j++
			}
			outs = append(outs, readmeOutput{line: i + 3, prefix: prefix, text: strings.Join(lines[i+2:j], "\n")})
			i = j
		}
	}
	if len(stmts) == 0 {
		t.Fatal("the by-hand section has no run blocks")
	}
	return stmts, outs
}

// hereDoc is the start of a here-document, with its delimiter.
var hereDoc = regexp.MustCompile(`<<-?'?([A-Za-z_]+)'?\s*$`)

// trailingComment is the comment at the end of a shell line.
var trailingComment = regexp.MustCompile(`\s#\s+(.*)$`)

// splitStatements cuts a block into the statements bash reads (a line
// continued with \, a loop, a here-document are one), each with the
// comments that follow it.
func splitStatements(t *testing.T, firstLine int, lines []string) []readmeStatement {
	t.Helper()
	var out []readmeStatement
	var cur []string
	curLine := 0
	heredoc := "" // the delimiter of the here-document being read
	for i, l := range lines {
		if heredoc != "" {
			cur = append(cur, l)
			if l == heredoc {
				heredoc = ""
				out = append(out, readmeStatement{line: curLine, text: strings.Join(cur, "\n")})
				cur = nil
			}
			continue
		}
		if len(cur) == 0 {
			if c, ok := strings.CutPrefix(strings.TrimSpace(l), "#"); ok {
				if len(out) == 0 {
					t.Fatalf("README.md:%d: a comment before the block's first statement", firstLine+i)
				}
				out[len(out)-1].expect = append(out[len(out)-1].expect, strings.TrimSpace(c))
				continue
			}
			if strings.TrimSpace(l) == "" {
				continue
			}
			curLine = firstLine + i
		}
		cur = append(cur, l)
		if strings.HasSuffix(l, `\`) {
			continue
		}
		// bash -n only warns of an unterminated here-document.
		if m := hereDoc.FindStringSubmatch(l); m != nil {
			heredoc = m[1]
			continue
		}
		text := strings.Join(cur, "\n")
		if err := exec.Command("bash", "-n", "-c", text).Run(); err != nil {
			continue // not complete yet
		}
		st := readmeStatement{line: curLine, text: text}
		if m := trailingComment.FindStringSubmatch(l); m != nil {
			st.expect = append(st.expect, m[1])
		}
		out = append(out, st)
		cur = nil
	}
	if len(cur) > 0 {
		t.Fatalf("README.md:%d: the statement does not end within its block", curLine)
	}
	for i := range out {
		for _, c := range out[i].expect {
			if m := regexp.MustCompile(`\(exit status (\d+)\)$`).FindStringSubmatch(c); m != nil {
				out[i].exit, _ = strconv.Atoi(m[1])
			}
		}
	}
	return out
}

// A replacement is one way the test's run differs from the README's text.
type replacement struct {
	old, new, why string
}

// TestREADME_ThreeSitesByHand runs the README's "Running three sites by
// hand" as a new operator would copy it: in a temporary HOME, from the
// repository's root (so `make kqnode` builds bin/kqnode), with softhsm2-util
// creating the three tokens and three kqnode run processes in the
// background. It differs from the README in these ways only:
//   - init imports two pre-parameter test fixtures per site, for the keygen
//     and the reshare (--preparams-fixtures, the shortcut the README gives
//     after step 2), and
//     run gets --preparams-target 0, so that no site spends minutes of CPU
//     on safe primes;
//   - the sites listen on free ports instead of 4101 to 4103, which another
//     program on the machine may hold;
//   - where SoftHSM2's module is not at the README's Debian path, the
//     module path of this machine is used.
//
// Every statement must exit 0, or with the status the README gives it
// ("(exit status N)"). A comment after a statement (at the end of its line
// or on the next) that starts with { is the shape of the JSON it prints:
// the same members (at least those shown, when the README ends the object
// with ,…}), strings equal or, where the README writes …, equal around it,
// numbers and booleans of the same type. A comment that starts
// with a quoted text ("preparams 1 ready ...", or a JSON member
// "protocol":"gg20") names text the statement prints. An output block is
// what a statement prints, line by line once hex, addresses and base64 are
// masked; a README line ending in ... stands for a longer line.
func TestREADME_ThreeSitesByHand(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through a keygen")
	}
	for _, tool := range []string{"bash", "make", "jq", "softhsm2-util", "sha256sum", "od", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's steps need %s: %v", tool, err)
		}
	}
	stmts, outs := readmeByHand(t)

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	fixtureDir := t.TempDir()
	// Two sets per site: one for the keygen of step 5, one for the
	// reshare of step 7.
	for i, s := range []string{"a", "b", "c"} {
		for j := range 2 {
			data, err := os.ReadFile(fixtureFile(2*i + j))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(fixtureDir, fmt.Sprintf("%s-%d.json", s, j)), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	repl := []replacement{
		{`--pin-source file:$KQ/pin-$s \`, `--pin-source file:$KQ/pin-$s --preparams-fixtures ` + fixtureDir + `/$s-0.json,` + fixtureDir + `/$s-1.json \`,
			"two pre-parameter test fixtures per site"},
		{`--listen /ip4/127.0.0.1/tcp/$port`, `--listen /ip4/127.0.0.1/tcp/$port --preparams-target 0`,
			"no background generation of pre-parameters"},
	}
	for _, p := range []string{"4101", "4102", "4103"} {
		repl = append(repl, replacement{p, strconv.Itoa(freePort(t)), "a free port"})
	}
	if mod, err := softhsm.ModulePath(); err != nil {
		t.Fatal(err)
	} else if mod != readmeModule {
		repl = append(repl, replacement{readmeModule, mod, "SoftHSM2's module on this machine"})
	}
	used := make([]bool, len(repl))
	outDir := t.TempDir()
	var script strings.Builder
	script.WriteString("out=" + shellQuote(outDir) + "\n")
	for i, st := range stmts {
		text := st.text
		for j, r := range repl {
			if strings.Contains(text, r.old) {
				used[j] = true
				text = strings.ReplaceAll(text, r.old, r.new)
			}
		}
		fmt.Fprintf(&script, "{\n%s\n} > \"$out/%d.out\" 2> \"$out/%d.err\"; rc=$?; echo $rc > \"$out/%d.rc\"; [ $rc = %d ] || exit 100\n",
			text, i, i, i, st.exit)
	}
	for j, r := range repl {
		if !used[j] && r.old != readmeModule {
			t.Fatalf("the README no longer has %q, which the test replaces (%s): update the test", r.old, r.why)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	// The background kqnode run processes are in bash's process group:
	// whatever happens, none outlives the test.
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		runErr = ctx.Err()
	}

	kq := filepath.Join(home, "kq")
	siteLogs := func() string {
		var b strings.Builder
		for _, s := range []string{"a", "b", "c"} {
			data, _ := os.ReadFile(filepath.Join(kq, "site-"+s+".log"))
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) > 30 {
				lines = lines[len(lines)-30:]
			}
			fmt.Fprintf(&b, "--- site-%s.log (last lines)\n%s\n", s, strings.Join(lines, "\n"))
		}
		return b.String()
	}
	stdouts := make([]string, len(stmts))
	for i, st := range stmts {
		rcData, err := os.ReadFile(filepath.Join(outDir, fmt.Sprintf("%d.rc", i)))
		if err != nil {
			t.Fatalf("README.md:%d did not finish (%v): %s\nbash: %s\n%s", st.line, runErr, st.text, stderr.String(), siteLogs())
		}
		outData, _ := os.ReadFile(filepath.Join(outDir, fmt.Sprintf("%d.out", i)))
		errData, _ := os.ReadFile(filepath.Join(outDir, fmt.Sprintf("%d.err", i)))
		stdouts[i] = string(outData)
		if rc := strings.TrimSpace(string(rcData)); rc != strconv.Itoa(st.exit) {
			t.Fatalf("README.md:%d exited %s, want %d: %s\nstdout: %s\nstderr: %s\n%s", st.line, rc, st.exit, st.text, outData, errData, siteLogs())
		}
		for _, c := range st.expect {
			if err := checkComment(c, string(outData)); err != nil {
				t.Errorf("README.md:%d: %s\n  statement: %s\n  the README says: %s\n  stdout: %s\n  stderr: %s", st.line, err, st.text, c, outData, errData)
			}
		}
	}
	if runErr != nil {
		t.Fatalf("bash: %v\n%s", runErr, stderr.String())
	}
	for _, o := range outs {
		i := -1
		for j, st := range stmts {
			if strings.HasPrefix(st.text, o.prefix) {
				i = j
				break
			}
		}
		if i < 0 {
			t.Errorf("README.md:%d: no run statement starts with %q", o.line, o.prefix)
			continue
		}
		if err := sameOutput(o.text, stdouts[i]); err != nil {
			t.Errorf("README.md:%d: %s prints otherwise than the README shows: %v\nprinted:\n%s", o.line, o.prefix, err, stdouts[i])
		}
	}
	// After the section every site stops: each was sent SIGTERM and
	// removes its api.json when it has closed its store and token, which
	// on a loaded machine may take a while after kill returned.
	deadline := time.Now().Add(time.Minute)
	for _, s := range []string{"a", "b", "c"} {
		for {
			_, err := os.Stat(filepath.Join(kq, "site-"+s, apiFile))
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("site-%s still has its %s a minute after the README's last step stopped it", s, apiFile)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// quotedText is a comment that starts with a quoted text: a JSON member
// ("protocol":"gg20") or words ("preparams 1 ready ...").
var quotedText = regexp.MustCompile(`^"([^"]*)"(:"[^"]*")?`)

// checkComment checks what a comment of the README says a statement
// prints; comments of other forms are prose.
func checkComment(comment, stdout string) error {
	switch {
	case strings.HasPrefix(comment, "{"):
		shape := comment
		if i := strings.LastIndex(shape, "}"); i >= 0 {
			shape = shape[:i+1]
		}
		// {…,…} shows some of the members of an object that has more.
		shape, open := strings.CutSuffix(shape, ",…}")
		if open {
			shape += "}"
		}
		var want any
		if err := json.Unmarshal([]byte(shape), &want); err != nil {
			return fmt.Errorf("the README's JSON %s does not parse: %w", shape, err)
		}
		var got any
		if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &got); err != nil {
			return fmt.Errorf("stdout is not one JSON value: %w", err)
		}
		return sameShape("", want, got, open)
	case quotedText.MatchString(comment):
		m := quotedText.FindStringSubmatch(comment)
		if m[2] != "" {
			if member := `"` + m[1] + `"` + m[2]; !strings.Contains(stdout, member) {
				return fmt.Errorf("stdout has no %s", member)
			}
			return nil
		}
		if !elided(m[1], false).MatchString(stdout) {
			return fmt.Errorf("stdout has no %q", m[1])
		}
	}
	return nil
}

// elided matches text in which the README's … and ... stand for anything;
// whole, the text and nothing else.
func elided(s string, whole bool) *regexp.Regexp {
	parts := regexp.MustCompile(`…|\.\.\.`).Split(s, -1)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re := strings.Join(parts, ".*")
	if whole {
		re = "^" + re + "$"
	}
	return regexp.MustCompile(`(?s)` + re)
}

// sameShape compares a JSON value with the README's: the same members (at
// least those when open), strings equal (around …), numbers and booleans of
// the same type.
func sameShape(at string, want, got any, open bool) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %v is not an object", at, got)
		}
		for k := range g {
			if _, ok := w[k]; !ok && !open {
				return fmt.Errorf("%s: member %q is not in the README", at, k)
			}
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s: no member %q", at, k)
			}
			if err := sameShape(at+"."+k, wv, gv, false); err != nil {
				return err
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: %v is not an array of %d", at, got, len(w))
		}
		for i := range w {
			if err := sameShape(fmt.Sprintf("%s[%d]", at, i), w[i], g[i], false); err != nil {
				return err
			}
		}
	case string:
		g, ok := got.(string)
		if !ok || !elided(w, true).MatchString(g) {
			return fmt.Errorf("%s: %v is not %q", at, got, w)
		}
	case float64:
		if _, ok := got.(float64); !ok {
			return fmt.Errorf("%s: %v is not a number", at, got)
		}
	case bool:
		if _, ok := got.(bool); !ok {
			return fmt.Errorf("%s: %v is not a boolean", at, got)
		}
	}
	return nil
}

// What differs between two sites' outputs of one step: keys, hashes,
// signatures, addresses, PSBTs.
var (
	maskHex    = regexp.MustCompile(`\b[0-9a-f]{16,}\b`)
	maskBTC    = regexp.MustCompile(`\b(bc|tb|bcrt)1[02-9ac-hj-np-z]{8,}\b`)
	maskETH    = regexp.MustCompile(`\b0x[0-9a-fA-F]{40}\b`)
	maskBase64 = regexp.MustCompile(`[A-Za-z0-9+/]{24,}=*`)
)

func maskOutput(l string) string {
	l = maskHex.ReplaceAllString(l, "<hex>")
	l = maskBTC.ReplaceAllString(l, "<address>")
	l = maskETH.ReplaceAllString(l, "<address>")
	return maskBase64.ReplaceAllString(l, "<base64>")
}

// sameOutput compares printed text with the README's output block, line
// by line, after masking.
func sameOutput(readme, printed string) error {
	want := strings.Split(strings.TrimRight(readme, "\n"), "\n")
	got := strings.Split(strings.TrimRight(printed, "\n"), "\n")
	if len(want) != len(got) {
		return fmt.Errorf("%d lines, the README shows %d", len(got), len(want))
	}
	for i := range want {
		w, g := maskOutput(want[i]), maskOutput(got[i])
		if p, ok := strings.CutSuffix(w, "..."); ok {
			if !strings.HasPrefix(g, p) {
				return fmt.Errorf("line %d is %q, the README shows %q", i+1, g, w)
			}
			continue
		}
		if w != g {
			return fmt.Errorf("line %d is %q, the README shows %q", i+1, g, w)
		}
	}
	return nil
}
