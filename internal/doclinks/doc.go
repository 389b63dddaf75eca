// Package doclinks checks the Go doc links of this module's doc comments:
// its test fails when a link names a declaration that does not exist, in
// this module or in the standard library, or when a bracketed name that
// looks like a link did not become one (go doc then shows the brackets).
// Links rot when a name they point to is renamed; the test catches that in
// `make test` instead of on the rendered documentation.
package doclinks
