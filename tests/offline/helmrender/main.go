// helmrender: an offline stand-in for `helm template`, for machines without a helm binary.
//
// It is NOT Helm. It reproduces the part of Helm's rendering engine that helm/rlog uses, on
// the same libraries: Go's text/template, Masterminds/sprig v3 (Helm's function library,
// minus env/expandenv) and Helm's own additions (toYaml, fromYaml, toJson, fromJson, include,
// tpl, required, lookup), with values loaded and merged the way Helm does (YAML -> JSON, so
// numbers are float64; later -f files and --set override earlier ones; null deletes a key),
// .Release/.Chart/.Files/.Template/.Capabilities objects, missingkey=zero and "<no value>"
// removed. No schema validation (validate.sh runs ajv on the values), no subcharts, no
// kubeVersion check, no hook sorting. The GitHub workflow diffs real `helm template` output
// against k8s/ to catch any difference.
//
// Build (Debian: golang-go golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o helmrender ./tests/offline/helmrender
//
// Usage:
//
//	helmrender [--release NAME] [--namespace NS] [-f values.yaml]... [--set a.b=c]...
//	           [--skip-tests] [--notes] [--strict] CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/ghodss/yaml"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type files struct{ root string }

// Get returns a chart file (path relative to the chart) or "" like Helm's .Files.Get.
func (f files) Get(name string) string {
	b, err := os.ReadFile(filepath.Join(f.root, filepath.FromSlash(name)))
	if err != nil {
		return ""
	}
	return string(b)
}

func (f files) GetBytes(name string) []byte { return []byte(f.Get(name)) }

type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// merge overlays src onto dst like Helm's coalescing of user values over chart defaults.
func merge(dst, src map[string]interface{}) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			merge(dm, sm)
			continue
		}
		dst[k] = v
	}
}

// setValue applies one --set a.b.c=value (Helm's strvals typing for scalars).
func setValue(vals map[string]interface{}, expr string) error {
	eq := strings.Index(expr, "=")
	if eq <= 0 {
		return fmt.Errorf("--set %q: want key=value", expr)
	}
	keys, raw := strings.Split(expr[:eq], "."), expr[eq+1:]
	var v interface{} = raw
	switch {
	case raw == "true":
		v = true
	case raw == "false":
		v = false
	case raw == "null":
		v = nil
	default:
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			v = n
		}
	}
	m := vals
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	if v == nil {
		delete(m, keys[len(keys)-1])
	} else {
		m[keys[len(keys)-1]] = v
	}
	return nil
}

func toYAML(v interface{}) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

func main() {
	release := flag.String("release", "rlog", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	skipTests := flag.Bool("skip-tests", false, "leave out manifests annotated helm.sh/hook: test")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	strict := flag.Bool("strict", false, "a missing value is an error (like helm lint --strict)")
	var valueFiles, sets multiFlag
	flag.Var(&valueFiles, "f", "values file (repeatable)")
	flag.Var(&sets, "set", "key=value (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helmrender [flags] CHART_DIR")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *release, *namespace, valueFiles, sets, *skipTests, *notes, *strict); err != nil {
		fmt.Fprintln(os.Stderr, "helmrender:", err)
		os.Exit(1)
	}
}

func run(chartDir, release, namespace string, valueFiles, sets []string, skipTests, notes, strict bool) error {
	chartYAML, err := readYAMLMap(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	chartName, _ := chartYAML["name"].(string)
	if chartName == "" {
		return errors.New("Chart.yaml has no name")
	}
	chart := map[string]interface{}{}
	for k, v := range chartYAML {
		key := strings.ToUpper(k[:1]) + k[1:]
		switch k {
		case "apiVersion":
			key = "APIVersion"
		case "kubeVersion":
			key = "KubeVersion"
		}
		chart[key] = v
	}

	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, f := range valueFiles {
		m, err := readYAMLMap(f)
		if err != nil {
			return err
		}
		merge(values, m)
	}
	for _, s := range sets {
		if err := setValue(values, s); err != nil {
			return err
		}
	}

	// Every file under templates/, named like Helm names them: <chart>/templates/<path>.
	var names []string
	sources := map[string]string{}
	tdir := filepath.Join(chartDir, "templates")
	err = filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		name := path.Join(chartName, filepath.ToSlash(rel))
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		names = append(names, name)
		sources[name] = string(b)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)

	missingkey := "missingkey=zero"
	if strict {
		missingkey = "missingkey=error"
	}
	root := template.New("gotpl").Option(missingkey)
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includeDepth := 0
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["toJson"] = func(v interface{}) string {
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
	funcs["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 100 {
			return "", errors.New("include: nesting too deep")
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	root.Funcs(funcs)
	for _, n := range names {
		if _, err := root.New(n).Parse(sources[n]); err != nil {
			return err
		}
	}

	top := func(name string) map[string]interface{} {
		return map[string]interface{}{
			"Values": values,
			"Chart":  chart,
			"Release": map[string]interface{}{
				"Name": release, "Namespace": namespace, "Service": "Helm",
				"IsInstall": true, "IsUpgrade": false, "Revision": 1,
			},
			"Files":    files{root: chartDir},
			"Template": map[string]interface{}{"Name": name, "BasePath": path.Join(chartName, "templates")},
			"Capabilities": map[string]interface{}{
				"KubeVersion": map[string]interface{}{"Version": "v1.31.0", "Major": "1", "Minor": "31", "GitVersion": "v1.31.0"},
				"APIVersions": apiVersions{"v1", "apps/v1", "policy/v1", "networking.k8s.io/v1"},
			},
		}
	}

	var out bytes.Buffer
	for _, n := range names {
		base := path.Base(n)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notes {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, n, top(n)); err != nil {
			return err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if notes {
			out.WriteString(text)
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		if skipTests && isTestHook(text) {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", n, text)
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}

// isTestHook reports whether a rendered template is annotated helm.sh/hook: test.
func isTestHook(text string) bool {
	var doc struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return false
	}
	for _, h := range strings.Split(doc.Metadata.Annotations["helm.sh/hook"], ",") {
		if strings.TrimSpace(h) == "test" {
			return true
		}
	}
	return false
}
