package doclinks

import (
	"go/ast"
	"go/build"
	"go/doc"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// module is the path of the module whose docs are checked; root is its
// directory, relative to this package.
const (
	module = "github.com/keyquorum/keyquorum"
	root   = "../.."
)

// pkgDoc is one package's documentation and its link targets: top-level
// names, and "Type.Name" for methods and fields (go/doc links both).
type pkgDoc struct {
	doc  *doc.Package
	syms map[string]bool
}

// loader parses packages once each, by directory.
type loader struct {
	t    *testing.T
	pkgs map[string]*pkgDoc
}

func (l *loader) load(dir, importPath string) *pkgDoc {
	if p, ok := l.pkgs[dir]; ok {
		return p
	}
	l.pkgs[dir] = nil
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var files []*ast.File
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			l.t.Errorf("parse %s: %v", filepath.Join(dir, n), err)
			return nil
		}
		if f.Name.Name == "documentation" {
			continue
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil
	}
	d, err := doc.NewFromFiles(fset, files, importPath, doc.AllDecls)
	if err != nil {
		l.t.Errorf("doc %s: %v", dir, err)
		return nil
	}
	p := &pkgDoc{doc: d, syms: map[string]bool{}}
	for _, f := range files {
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if decl.Recv == nil {
					p.syms[decl.Name.Name] = true
					continue
				}
				typ := decl.Recv.List[0].Type
				if s, ok := typ.(*ast.StarExpr); ok {
					typ = s.X
				}
				if ix, ok := typ.(*ast.IndexExpr); ok {
					typ = ix.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					p.syms[id.Name+"."+decl.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						p.syms[spec.Name.Name] = true
						var fields *ast.FieldList
						switch t := spec.Type.(type) {
						case *ast.StructType:
							fields = t.Fields
						case *ast.InterfaceType:
							fields = t.Methods
						}
						if fields != nil {
							for _, fl := range fields.List {
								for _, n := range fl.Names {
									p.syms[spec.Name.Name+"."+n.Name] = true
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range spec.Names {
							p.syms[n.Name] = true
						}
					}
				}
			}
		}
	}
	l.pkgs[dir] = p
	return p
}

// target loads the package a link's import path names: this module's
// packages from their directories, the standard library's from GOROOT.
// Other modules' packages are not checked (nil).
func (l *loader) target(importPath string) *pkgDoc {
	if importPath == module {
		return l.load(root, module)
	}
	if rest, ok := strings.CutPrefix(importPath, module+"/"); ok {
		return l.load(filepath.Join(root, filepath.FromSlash(rest)), importPath)
	}
	if strings.Contains(strings.Split(importPath, "/")[0], ".") {
		return nil
	}
	bp, err := build.Default.Import(importPath, "", build.FindOnly)
	if err != nil || !bp.Goroot {
		return nil
	}
	return l.load(bp.Dir, importPath)
}

// texts returns every doc comment of the package.
func texts(d *doc.Package) []string {
	out := []string{d.Doc}
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			out = append(out, v.Doc)
		}
	}
	funcs := func(fs []*doc.Func) {
		for _, f := range fs {
			out = append(out, f.Doc)
		}
	}
	values(d.Consts)
	values(d.Vars)
	funcs(d.Funcs)
	for _, t := range d.Types {
		out = append(out, t.Doc)
		values(t.Consts)
		values(t.Vars)
		funcs(t.Funcs)
		funcs(t.Methods)
	}
	return out
}

// links calls f for every doc link of d.
func links(d *comment.Doc, f func(*comment.DocLink)) {
	var text func([]comment.Text)
	text = func(ts []comment.Text) {
		for _, t := range ts {
			switch t := t.(type) {
			case *comment.DocLink:
				f(t)
			case *comment.Link:
				text(t.Text)
			}
		}
	}
	var blocks func([]comment.Block)
	blocks = func(bs []comment.Block) {
		for _, b := range bs {
			switch b := b.(type) {
			case *comment.Paragraph:
				text(b.Text)
			case *comment.Heading:
				text(b.Text)
			case *comment.List:
				for _, it := range b.Items {
					blocks(it.Content)
				}
			}
		}
	}
	blocks(d.Content)
}

// unlinked matches what was meant as a doc link but did not become one:
// a bracketed exported name ([Name], [*Name], [Name.Method]) or a
// bracketed qualified name ([pkg.Name]) left in the rendered text.
var unlinked = regexp.MustCompile(`\[\*?([A-Z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?|[a-z][a-z0-9]*\.[A-Z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?)\]`)

// TestDocLinks_ResolveToDeclarations walks every package of the module
// (not nested modules, testdata or hidden directories) and checks each doc
// link of its doc comments.
func TestDocLinks_ResolveToDeclarations(t *testing.T) {
	l := &loader{t: t, pkgs: map[string]*pkgDoc{}}
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root {
			if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // a nested module: its own docs
			}
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		importPath := module
		if rel != "." {
			importPath += "/" + filepath.ToSlash(rel)
		}
		p := l.load(path, importPath)
		if p == nil {
			return nil
		}
		checked++
		checkPackage(t, l, importPath, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("checked %d packages under %s; is root right?", checked, root)
	}
}

func checkPackage(t *testing.T, l *loader, importPath string, p *pkgDoc) {
	t.Helper()
	parser := p.doc.Parser()
	printer := p.doc.Printer()
	for _, text := range texts(p.doc) {
		d := parser.Parse(text)
		links(d, func(link *comment.DocLink) {
			if link.Name == "" {
				return // a link to a package as a whole
			}
			sym := link.Name
			if link.Recv != "" {
				sym = strings.TrimPrefix(link.Recv, "*") + "." + link.Name
			}
			target := p
			if link.ImportPath != "" && link.ImportPath != importPath {
				target = l.target(link.ImportPath)
				if target == nil {
					return // outside this module and the standard library
				}
			}
			if !target.syms[sym] {
				where := link.ImportPath
				if where == "" {
					where = importPath
				}
				t.Errorf("%s: doc link [%s] names nothing in %s", importPath, linkText(link), where)
			}
		})
		for _, m := range unlinked.FindAllStringSubmatch(string(printer.Text(d)), -1) {
			t.Errorf("%s: [%s] in a doc comment is not a doc link (no such name, or a package this one does not import: use the full import path)", importPath, m[1])
		}
	}
}

func linkText(l *comment.DocLink) string {
	s := l.Name
	if l.Recv != "" {
		s = l.Recv + "." + s
	}
	if l.ImportPath != "" {
		s = l.ImportPath + "." + s
	}
	return s
}
