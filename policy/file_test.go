package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/policy"
)

const edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHCfP2em0x9FnzP4NDXQdWyHKI6eJyuJ2sHBzQcU2Av6 alice@treasury"

// TestParse_ErrorsNameFileLineAndColumn feeds broken policies and checks
// the position each error names.
func TestParse_ErrorsNameFileLineAndColumn(t *testing.T) {
	head := "# comment\nkeyquorum-policy 1\napprover alice " + edKey + "\ngroup ops alice\nlist ours bc1qcwmfyj3u53rrzvkekuezkgda0vaunlcl9jhs4w\n"
	cases := []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"CEL syntax error", head + "rule r allow\n  kind == \"bitcoin-psbt\" &&\n  btc.sent_sat <= \n", 8, 19, "Syntax error"},
		{"CEL syntax error mid-line", head + "rule r allow\n  kind == \"bitcoin-psbt\" && (btc.sent_sat <= 5\n", 7, 47, "Syntax error"},
		{"comment lines keep numbering", head + "rule r allow\n  kind == \"x\"\n# note\n\n  && btc.sent_sat <= \"1\"\n", 10, 19, "no matching overload"},
		{"type error", head + "rule r allow\n  btc.sent_sat + \"1\" > 0\n", 7, 16, "no matching overload"},
		{"undefined field", head + "rule r allow\n  btc.sent_btc > 0\n", 7, 6, "undefined field"},
		{"not a bool", head + "rule r allow\n  btc.sent_sat\n", 7, 1, "want bool"},
		{"undefined variable", head + "rule r deny\n  balance > 0\n", 7, 3, "undeclared reference"},
		{"unknown list", head + "rule r allow\n  eth.to in lists.theirs\n", 7, 18, "no list named \"theirs\""},
		{"unknown group", head + "rule r allow\n  approvals.risk > 0\n", 7, 12, "no group named \"risk\""},
		{"computed list name", head + "rule r allow\n  eth.to in lists[eth.to]\n", 7, 18, "constant list name"},
		{"lists used whole", head + "rule r allow\n  size(lists) > 0\n", 7, 8, "constant list name"},
		{"no header", "rule r allow\n  true\n", 1, 1, "first directive"},
		{"header version 2", "keyquorum-policy 2\n", 1, 1, "unsupported policy version"},
		{"empty file", "# nothing\n", 1, 1, "not a policy file"},
		{"header twice", head + "keyquorum-policy 1\n", 6, 1, "appears twice"},
		{"unknown directive", head + "allow everything\n", 6, 1, "unknown directive"},
		{"indented line outside a rule", head + "  true\n", 6, 1, "outside a rule"},
		{"rule without condition", head + "rule r allow\nrule s deny\n  true\n", 6, 1, "no condition"},
		{"rule with a bad action", head + "rule r permit\n  true\n", 6, 8, "rule action"},
		{"rule name repeated", head + "rule r deny\n  true\nrule r deny\n  true\n", 8, 6, "already defined on line 6"},
		{"bad requirement", head + "rule r allow ops:2\n  true\n", 6, 14, "GROUP=COUNT"},
		{"requirement of zero", head + "rule r allow ops=0\n  true\n", 6, 14, "count must be"},
		{"undefined group required", head + "rule r allow risk=1\n  true\n", 6, 14, "not defined"},
		{"more than the group has", head + "rule r allow ops=2\n  true\n", 6, 14, "has 1 members"},
		{"group required twice", head + "rule r allow ops=1 ops=1\n  true\n", 6, 20, "required twice"},
		{"RSA approver key", head + "approver bob ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDgyFpD0EWaok8KkpMjNG8p1vkRyhRFVbu1iOjbf0VaS2Pd0DJcCgOLs7Xy16egtvsfoHllWl0mAdJMH7WYfs94ZUUrbub+mHllNrzaaM0LNNwHUY82sn7x2U3QLV/zA3g89WtJ0Oy0niHo/c0YtFbuo7iQOrcMXQ7GeH8d7cUbaw== bob\n", 6, 14, "not accepted"},
		{"P-384 approver key", head + "approver bob ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBJRP4oLIdtkoCwqCwYqtHgUOclJ95l9bZZo9jZDrhkbRNxnOcmBhPc6FykzHneZytFncHYXMOqTHdyIFoTHWevm88h9H7Rcmbe37anZ8Gxz7NNOaoYVoXW0cwb54fesHsA== bob\n", 6, 14, "not accepted"},
		{"approver key is not a key", head + "approver bob ssh-ed25519 AAAA bob\n", 6, 14, "not an OpenSSH public key"},
		{"approver key mislabelled", head + "approver bob ecdsa-sha2-nistp256 " + strings.TrimPrefix(edKey, "ssh-ed25519 ") + "\n", 6, 14, "not an OpenSSH public key"},
		{"approver name", head + "approver b:ob " + edKey + "\n", 6, 10, "approver name"},
		{"key listed twice", head + "approver bob " + edKey + "\n", 6, 26, "already listed for approver alice"},
		{"group member not an approver", head + "group risk carol\n", 6, 12, "not an approver"},
		{"group name", head + "group Risk alice\n", 6, 7, "group name"},
		{"member twice", head + "group ops alice\n", 6, 11, "already in group ops"},
		{"list name", head + "list our-addresses x\n", 6, 6, "list name"},
		{"bad EIP-55 checksum", head + "list eth 0xB07c007061F9D32670E068389B1C5b5A2c3Ba963\n", 6, 10, "checksum"},
		{"approval validity", head + "approval-max-validity forever\n", 6, 23, "approval-max-validity"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := policy.Parse("site.policy", []byte(c.src))
			var fe *policy.FileError
			if !errors.As(err, &fe) || !errors.Is(err, policy.ErrPolicyFile) {
				t.Fatalf("err = %v, want a *FileError", err)
			}
			if fe.File != "site.policy" || fe.Line != c.line || fe.Column != c.col || !strings.Contains(fe.Msg, c.msg) {
				t.Fatalf("error %q, want site.policy:%d:%d containing %q", err, c.line, c.col, c.msg)
			}
			if !strings.HasPrefix(err.Error(), "site.policy:") {
				t.Fatalf("error %q does not start with the file name", err)
			}
		})
	}
}

func TestParse_ListsAndGroupsMayFollowTheirRules(t *testing.T) {
	src := "keyquorum-policy 1\nrule r allow ops=1\n  eth.to in lists.ours && approvals.ops >= 0\n" +
		"list ours 0xb07c007061f9d32670e068389b1c5b5a2c3ba963\napprover alice " + edKey + "\ngroup ops alice\n"
	p := mustParse(t, "later", src)
	rules := p.Rules()
	if len(rules) != 1 || rules[0].Name != "r" || rules[0].Line != 2 || rules[0].Action != policy.ActionAllow ||
		len(rules[0].Require) != 1 || rules[0].Require[0].String() != "ops=1" {
		t.Fatalf("rules %+v", rules)
	}
	if got := p.Approvers(); len(got) != 1 || got[0] != "alice" || len(p.ApproverKeys("alice")) != 1 {
		t.Fatalf("approvers %v", got)
	}
}

func TestParse_DenyReasonAndCRLF(t *testing.T) {
	p := mustParse(t, "crlf", "keyquorum-policy 1\r\nrule no-permits deny   permits are never signed  \r\n  true\r\n")
	if r := p.Rules()[0]; r.Reason != "permits are never signed" || r.Action != policy.ActionDeny {
		t.Fatalf("rule %+v", r)
	}
	if r := mustParse(t, "default", "keyquorum-policy 1\nrule x deny\n  true\n").Rules()[0]; r.Reason != "denied by policy" {
		t.Fatalf("default reason %q", r.Reason)
	}
}

func TestParse_Bounds(t *testing.T) {
	if _, err := policy.Parse("big", make([]byte, policy.MaxPolicySize+1)); !errors.Is(err, policy.ErrPolicyFile) {
		t.Fatalf("oversized file: %v", err)
	}
	var b strings.Builder
	b.WriteString("keyquorum-policy 1\n")
	for i := 0; i <= policy.MaxRules; i++ {
		b.WriteString("rule r" + itoa(i) + " deny\n  true\n")
	}
	if _, err := policy.Parse("many", []byte(b.String())); !errors.Is(err, policy.ErrPolicyFile) || !strings.Contains(err.Error(), "rules") {
		t.Fatalf("too many rules: %v", err)
	}
	if _, err := policy.Parse("nul", []byte("keyquorum-policy 1\nrule r deny\n  tr\x00ue\n")); !errors.Is(err, policy.ErrPolicyFile) {
		t.Fatalf("NUL byte: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("keyquorum-policy 1\nrule r allow\n  true\n"))
	f.Add(readExample(f, "treasury"))
	f.Add(readExample(f, "allow-raw-digests"))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := policy.Parse("fuzz", src)
		if err != nil {
			var fe *policy.FileError
			if !errors.As(err, &fe) || fe.Line < 1 || fe.Column < 1 {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		_ = p.Rules()
	})
}
