package hsmshare_test

import (
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/tss"
)

// *hsmshare.Store is the tss.Store implementation; hsmshare itself does not
// import tss, so the check lives here.
var _ tss.Store = (*hsmshare.Store)(nil)
