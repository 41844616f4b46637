package charttest

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

func TestSMTP(t *testing.T) {
	t.Run("without an SMTP Secret there is no URL and no egress to a mail server", func(t *testing.T) {
		r := mustRender(t, mustValues(t, []string{"values.yaml", "values-us.yaml"}))
		c := container(t, find[*appsv1.Deployment](t, r, fullname).Spec.Template.Spec, "pushgate")
		for _, e := range c.Env {
			if e.Name == "PUSHGATE_SMTP_URL" {
				t.Fatalf("PUSHGATE_SMTP_URL is set: %+v", e)
			}
		}
		for _, e := range find[*networkingv1.NetworkPolicy](t, r, fullname).Spec.Egress {
			for _, p := range e.Ports {
				if p.Port.IntValue() == 587 {
					t.Fatal("egress to 587 without a mail server")
				}
			}
		}
	})
	t.Run("an SMTP Secret becomes PUSHGATE_SMTP_URL by reference and opens its port", func(t *testing.T) {
		r := mustRender(t, mustValues(t, []string{"values.yaml", "values-us.yaml"}, "smtp: {urlSecret: {name: pushgate-smtp, key: url}, port: 465}"))
		c := container(t, find[*appsv1.Deployment](t, r, fullname).Spec.Template.Spec, "pushgate")
		found := false
		for _, e := range c.Env {
			if e.Name == "PUSHGATE_SMTP_URL" {
				found = e.Value == "" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
					e.ValueFrom.SecretKeyRef.Name == "pushgate-smtp" && e.ValueFrom.SecretKeyRef.Key == "url"
			}
		}
		if !found {
			t.Fatalf("no PUSHGATE_SMTP_URL from the Secret in %+v", c.Env)
		}
		open := false
		for _, e := range find[*networkingv1.NetworkPolicy](t, r, fullname).Spec.Egress {
			for _, p := range e.Ports {
				open = open || p.Port.IntValue() == 465
			}
		}
		if !open {
			t.Fatal("no egress to the SMTP port")
		}
	})
}
