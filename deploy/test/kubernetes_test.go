package deploytest

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

var kubeDir = filepath.Join(repoRoot, "manifests", "kubernetes")

const (
	metricsPort = 9090
	configPath  = "/etc/accessbot/accessbot.yaml"
)

// rendered is the kustomize base as kubectl renders it, every document decoded
// strictly into its Kubernetes API type.
type rendered struct {
	namespaces   []*corev1.Namespace
	accounts     []*corev1.ServiceAccount
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	budgets      []*policyv1.PodDisruptionBudget
	policies     []*networkingv1.NetworkPolicy
}

// decodeStrict decodes one YAML document into out; a field the API type does
// not have is an error (a typo in a manifest would otherwise be dropped by the
// API server or, worse, silently ignored).
func decodeStrict(doc []byte, out any) error {
	return yaml.UnmarshalStrict(doc, out)
}

func renderKustomize(t *testing.T) rendered {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed to render manifests/kubernetes (kubectl kustomize) and is not on PATH: %v", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", kubeDir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", kubeDir, err, stderr.String())
	}
	var r rendered
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(stdout.String(), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var into any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			v := &corev1.Namespace{}
			r.namespaces, into = append(r.namespaces, v), v
		case "v1 ServiceAccount":
			v := &corev1.ServiceAccount{}
			r.accounts, into = append(r.accounts, v), v
		case "v1 ConfigMap":
			v := &corev1.ConfigMap{}
			r.configMaps, into = append(r.configMaps, v), v
		case "v1 Service":
			v := &corev1.Service{}
			r.services, into = append(r.services, v), v
		case "apps/v1 Deployment":
			v := &appsv1.Deployment{}
			r.deployments, into = append(r.deployments, v), v
		case "apps/v1 StatefulSet":
			v := &appsv1.StatefulSet{}
			r.statefulSets, into = append(r.statefulSets, v), v
		case "policy/v1 PodDisruptionBudget":
			v := &policyv1.PodDisruptionBudget{}
			r.budgets, into = append(r.budgets, v), v
		case "networking.k8s.io/v1 NetworkPolicy":
			v := &networkingv1.NetworkPolicy{}
			r.policies, into = append(r.policies, v), v
		default:
			t.Fatalf("document %d: %s %s is not a kind this test knows; add it with its checks", i, tm.APIVersion, tm.Kind)
		}
		if err := decodeStrict([]byte(doc), into); err != nil {
			t.Fatalf("document %d (%s): %v", i, tm.Kind, err)
		}
	}
	return r
}

func one[T any](t *testing.T, what string, items []T) T {
	t.Helper()
	if len(items) != 1 {
		t.Fatalf("want exactly one %s, got %d", what, len(items))
	}
	return items[0]
}

// selects reports whether a label selector picks pods with these labels.
func selects(t *testing.T, sel *metav1.LabelSelector, labels map[string]string) bool {
	t.Helper()
	if sel == nil || len(sel.MatchLabels) == 0 || len(sel.MatchExpressions) > 0 {
		t.Fatalf("selector %+v: want plain matchLabels", sel)
	}
	for k, v := range sel.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkHardened: the rules every pod of the base follows (the namespace
// enforces the restricted Pod Security Standard on top).
func checkHardened(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot must be true", name)
	}
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext.runAsUser must be a non-zero uid", name)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile must be RuntimeDefault", name)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false (no Kubernetes API calls)", name)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("%s: no host namespaces", name)
	}
	if len(spec.InitContainers) > 0 {
		t.Errorf("%s: init containers are not checked here; add their checks", name)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		where := name + "/" + c.Name
		switch {
		case sc == nil:
			t.Errorf("%s: no securityContext", where)
			continue
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s: readOnlyRootFilesystem must be true", where)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: allowPrivilegeEscalation must be false", where)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("%s: privileged", where)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s: capabilities must drop ALL and add none, got %+v", where, sc.Capabilities)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("%s: runAsNonRoot must be true", where)
		case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Errorf("%s: seccompProfile must be RuntimeDefault", where)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, lim := c.Resources.Requests[res], c.Resources.Limits[res]
			if req.IsZero() || lim.IsZero() {
				t.Errorf("%s: %s request and limit must both be set (got %v / %v)", where, res, req.String(), lim.String())
			} else if req.Cmp(lim) > 0 {
				t.Errorf("%s: %s request %v above its limit %v", where, res, req.String(), lim.String())
			}
		}
	}
}

// probePort resolves a probe's port (a number or a container port's name).
func probePort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

func TestKubernetesBase(t *testing.T) {
	r := renderKustomize(t)

	ns := one(t, "Namespace", r.namespaces)
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s: want pod-security.kubernetes.io/enforce: restricted", ns.Name)
	}

	// The bot: two replicas on the Redis store.
	dep := one(t, "Deployment", r.deployments)
	podLabels := dep.Spec.Template.Labels
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("deployment %s: want 2 replicas, got %v", dep.Name, ptrValue(dep.Spec.Replicas))
	}
	if !selects(t, dep.Spec.Selector, podLabels) {
		t.Errorf("deployment %s: its selector does not pick its own pods", dep.Name)
	}
	if dep.Namespace != ns.Name {
		t.Errorf("deployment in namespace %q, want %q", dep.Namespace, ns.Name)
	}
	pod := dep.Spec.Template.Spec
	checkHardened(t, "deployment "+dep.Name, pod)
	if u := pod.SecurityContext.RunAsUser; u == nil || *u != 65532 {
		t.Errorf("deployment: runAsUser %v, want 65532 (the image's USER)", ptrValue(u))
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= 20 {
		t.Errorf("deployment: terminationGracePeriodSeconds %v must exceed shutdown_timeout's default 20 s", ptrValue(pod.TerminationGracePeriodSeconds))
	}
	c := one(t, "container in the bot's pod", pod.Containers)
	if !strings.HasPrefix(c.Image, "registry.example.com/platform/accessbot:") {
		t.Errorf("bot image %q: kustomization.yaml's images should set it", c.Image)
	}
	if !slices.Equal(c.Args, []string{"run", "--config", configPath}) || len(c.Command) > 0 {
		t.Errorf("bot command %q args %q: want the image's entrypoint with run --config %s", c.Command, c.Args, configPath)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != metricsPort {
		t.Errorf("bot ports %+v: want only %d (metrics and health)", c.Ports, metricsPort)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/healthz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("bot %s: want an HTTP GET of %s", p.name, p.path)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || probePort(t, c, p.probe.HTTPGet.Port) != metricsPort {
			t.Errorf("bot %s: GET %s on %v, want %s on %d", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path, metricsPort)
		}
	}

	// Topology spread over nodes.
	var overNodes bool
	for _, tsc := range pod.TopologySpreadConstraints {
		if tsc.TopologyKey == "kubernetes.io/hostname" && tsc.MaxSkew == 1 &&
			tsc.WhenUnsatisfiable == corev1.DoNotSchedule && selects(t, tsc.LabelSelector, podLabels) {
			overNodes = true
		}
	}
	if !overNodes {
		t.Errorf("deployment: want a topologySpreadConstraint over kubernetes.io/hostname (maxSkew 1, DoNotSchedule) selecting its pods, got %+v", pod.TopologySpreadConstraints)
	}

	// The service account, with the IRSA placeholder and the GKE note.
	sa := one(t, "ServiceAccount", r.accounts)
	if pod.ServiceAccountName != sa.Name {
		t.Errorf("deployment runs as service account %q, the base defines %q", pod.ServiceAccountName, sa.Name)
	}
	if arn := sa.Annotations["eks.amazonaws.com/role-arn"]; !regexp.MustCompile(`^arn:aws:iam::\d{12}:role/.+`).MatchString(arn) {
		t.Errorf("service account: eks.amazonaws.com/role-arn %q is not an IAM role ARN placeholder", arn)
	}
	saFile, err := os.ReadFile(filepath.Join(kubeDir, "serviceaccount.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(saFile), "iam.gke.io/gcp-service-account") {
		t.Error("serviceaccount.yaml: want the GKE Workload Identity annotation explained in a comment")
	}

	// The config: mounted where the command reads it, on the Redis store, its
	// ${VAR}s all in the Secret template.
	cm := one(t, "ConfigMap", r.configMaps)
	cfg, ok := cm.Data["accessbot.yaml"]
	if !ok {
		t.Fatalf("configmap %s has no accessbot.yaml (keys %v)", cm.Name, slices.Sorted(maps.Keys(cm.Data)))
	}
	var mounted bool
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name && vm.MountPath == filepath.Dir(configPath) && vm.ReadOnly {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("configmap %s is not mounted read-only at %s", cm.Name, filepath.Dir(configPath))
	}
	var store struct {
		Store map[string]map[string]any `json:"store"`
	}
	if err := yaml.Unmarshal([]byte(cfg), &store); err != nil {
		t.Fatalf("accessbot.yaml: %v", err)
	}
	redisURL, _ := store.Store["redis"]["url"].(string)
	if len(store.Store) != 1 || redisURL == "" {
		t.Errorf("accessbot.yaml: want store.redis (two replicas share it), got %v", store.Store)
	}

	secret := secretTemplate(t)
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != secret.Name {
		t.Errorf("bot envFrom %+v: want the Secret %q", c.EnvFrom, secret.Name)
	}
	var memLimit bool
	for _, e := range c.Env {
		memLimit = memLimit || (e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
			e.ValueFrom.ResourceFieldRef.Resource == "limits.memory")
	}
	if !memLimit {
		t.Error("bot: want GOMEMLIMIT from limits.memory, so the Go runtime stays under the limit")
	}
	vars := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(stripComments(cfg), -1) {
		vars[m[1]] = true
	}
	if got, want := slices.Sorted(maps.Keys(secret.StringData)), slices.Sorted(maps.Keys(vars)); !slices.Equal(got, want) {
		t.Errorf("secret template keys %v, the config reads %v", got, want)
	}

	// The config passes `accessbot check` (offline) with the image's binary.
	checkConfig(t, cfg, slices.Sorted(maps.Keys(vars)))

	// The PodDisruptionBudget keeps one replica through a drain.
	pdb := one(t, "PodDisruptionBudget", r.budgets)
	if !selects(t, pdb.Spec.Selector, podLabels) {
		t.Error("the PodDisruptionBudget does not select the bot's pods")
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PodDisruptionBudget: want minAvailable 1, got %+v", pdb.Spec)
	}

	// The metrics Service.
	var metricsSvc *corev1.Service
	for _, s := range r.services {
		if s.Spec.Selector != nil && selectsMap(s.Spec.Selector, podLabels) {
			metricsSvc = s
		}
	}
	if metricsSvc == nil {
		t.Fatal("no Service selects the bot's pods (metrics)")
	}
	if len(metricsSvc.Spec.Ports) != 1 || metricsSvc.Spec.Ports[0].Port != metricsPort ||
		probePort(t, c, metricsSvc.Spec.Ports[0].TargetPort) != metricsPort {
		t.Errorf("service %s ports %+v: want %d to the container's %d", metricsSvc.Name, metricsSvc.Spec.Ports, metricsPort, metricsPort)
	}

	// NetworkPolicy: the bot's egress only to DNS, Redis and HTTPS.
	var botPolicy *networkingv1.NetworkPolicy
	for _, np := range r.policies {
		if selects(t, &np.Spec.PodSelector, podLabels) {
			if botPolicy != nil {
				t.Fatalf("two NetworkPolicies select the bot: %s and %s", botPolicy.Name, np.Name)
			}
			botPolicy = np
		}
	}
	if botPolicy == nil {
		t.Fatal("no NetworkPolicy selects the bot's pods")
	}
	if !slices.Contains(botPolicy.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || !slices.Contains(botPolicy.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("networkpolicy %s: policyTypes %v must include Ingress and Egress", botPolicy.Name, botPolicy.Spec.PolicyTypes)
	}
	if got, want := policyPorts(t, "egress", egressPorts(botPolicy)), []string{"TCP/443", "TCP/53", "TCP/6379", "UDP/53"}; !slices.Equal(got, want) {
		t.Errorf("bot egress allows %v, want exactly %v", got, want)
	}
	var ingress [][]networkingv1.NetworkPolicyPort
	for _, rule := range botPolicy.Spec.Ingress {
		ingress = append(ingress, rule.Ports)
	}
	if got, want := policyPorts(t, "ingress", ingress), []string{fmt.Sprintf("TCP/%d", metricsPort)}; !slices.Equal(got, want) {
		t.Errorf("bot ingress allows %v, want exactly %v", got, want)
	}

	// The trial Redis: StatefulSet, PVC, AOF on, the note about production.
	redis := one(t, "StatefulSet", r.statefulSets)
	checkHardened(t, "statefulset "+redis.Name, redis.Spec.Template.Spec)
	rc := one(t, "container in the Redis pod", redis.Spec.Template.Spec.Containers)
	if !regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(rc.Image) {
		t.Errorf("redis image %q is not pinned by digest", rc.Image)
	}
	if i := slices.Index(rc.Args, "--appendonly"); i < 0 || i+1 >= len(rc.Args) || rc.Args[i+1] != "yes" {
		t.Errorf("redis args %q: want --appendonly yes", rc.Args)
	}
	pvc := one(t, "volumeClaimTemplate", redis.Spec.VolumeClaimTemplates)
	if size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; size.Cmp(resource.MustParse("1Gi")) < 0 {
		t.Errorf("redis PVC requests %v, want at least 1Gi", size.String())
	}
	var dataMounted bool
	for _, vm := range rc.VolumeMounts {
		dataMounted = dataMounted || (vm.Name == pvc.Name && vm.MountPath == "/data")
	}
	if !dataMounted || !slices.Contains(rc.Args, "/data") {
		t.Errorf("redis: the PVC %q must be mounted at /data, Redis's --dir", pvc.Name)
	}
	redisFile, err := os.ReadFile(filepath.Join(kubeDir, "redis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(redisFile), "NOT for production") || !strings.Contains(string(redisFile), "Sentinel") {
		t.Error("redis.yaml: want the note that production uses a managed or Sentinel Redis")
	}
	// The config's Redis URL names the trial Redis's Service and port.
	var redisSvc *corev1.Service
	for _, s := range r.services {
		if s.Name == redis.Spec.ServiceName {
			redisSvc = s
		}
	}
	if redisSvc == nil || !selectsMap(redisSvc.Spec.Selector, redis.Spec.Template.Labels) {
		t.Fatalf("the StatefulSet's service %q is missing or does not select its pods", redis.Spec.ServiceName)
	}
	if !strings.Contains(redisURL, "@"+redisSvc.Name+":6379/") {
		t.Errorf("store.redis.url %q does not point at the trial Redis %s:6379", redisURL, redisSvc.Name)
	}
	var redisFromBot bool
	for _, np := range r.policies {
		if selectsMap(np.Spec.PodSelector.MatchLabels, redis.Spec.Template.Labels) {
			for _, rule := range np.Spec.Ingress {
				for _, peer := range rule.From {
					redisFromBot = redisFromBot || (peer.PodSelector != nil && selects(t, peer.PodSelector, podLabels))
				}
			}
		}
	}
	if !redisFromBot {
		t.Error("no NetworkPolicy lets the bot's pods reach the trial Redis")
	}
}

func selectsMap(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func egressPorts(np *networkingv1.NetworkPolicy) [][]networkingv1.NetworkPolicyPort {
	var out [][]networkingv1.NetworkPolicyPort
	for _, rule := range np.Spec.Egress {
		out = append(out, rule.Ports)
	}
	return out
}

// policyPorts lists "PROTO/port" of every rule; a rule without ports (any
// port) is an error, since it would open everything.
func policyPorts(t *testing.T, what string, rules [][]networkingv1.NetworkPolicyPort) []string {
	t.Helper()
	var out []string
	for _, ports := range rules {
		if len(ports) == 0 {
			t.Errorf("%s rule without ports: it allows every port", what)
		}
		for _, p := range ports {
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if p.Port == nil || p.EndPort != nil {
				t.Errorf("%s rule %+v: want one port, not a range or any", what, p)
				continue
			}
			out = append(out, fmt.Sprintf("%s/%s", proto, p.Port.String()))
		}
	}
	sort.Strings(out)
	return out
}

// secretTemplate is secret.example.yaml, decoded strictly, with no value.
func secretTemplate(t *testing.T) *corev1.Secret {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(kubeDir, "secret.example.yaml"))
	if err != nil {
		t.Fatalf("the Secret template: %v", err)
	}
	s := &corev1.Secret{}
	if err := decodeStrict(raw, s); err != nil {
		t.Fatalf("secret.example.yaml: %v", err)
	}
	if s.APIVersion != "v1" || s.Kind != "Secret" {
		t.Fatalf("secret.example.yaml is a %s %s", s.APIVersion, s.Kind)
	}
	if len(s.Data) > 0 {
		t.Error("secret.example.yaml: use stringData with empty values, no data")
	}
	for k, v := range s.StringData {
		if v != "" {
			t.Errorf("secret.example.yaml: %s has a value; the template holds none", k)
		}
	}
	kust, err := os.ReadFile(filepath.Join(kubeDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^\s*-\s*secret`).Match(kust) {
		t.Error("kustomization.yaml lists the Secret template: applying the base would wipe the real tokens")
	}
	return s
}

func stripComments(yamlText string) string {
	var b strings.Builder
	for _, line := range strings.Split(yamlText, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// checkConfig runs `accessbot check` on the ConfigMap's config, with the
// binary the image build made and a made-up value for each secret.
func checkConfig(t *testing.T, cfg string, vars []string) {
	t.Helper()
	bin := builtImageBinary(t)
	path := filepath.Join(t.TempDir(), "accessbot.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "check", "--config", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	shapes := map[string]string{"SLACK_APP_TOKEN": "xapp-", "SLACK_BOT_TOKEN": "xoxb-"} // what check insists on
	for _, v := range vars {
		cmd.Env = append(cmd.Env, v+"="+shapes[v]+"placeholder-"+strings.ToLower(v))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("accessbot check of the ConfigMap's accessbot.yaml: %v\n%s", err, out)
	}
}

func ptrValue[T any](p *T) any {
	if p == nil {
		return "none"
	}
	return *p
}
