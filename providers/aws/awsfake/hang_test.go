package awsfake_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/providers/aws/awsfake"
)

func post(ctx context.Context, url string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/", strings.NewReader(`{"IdentityStoreId":"`+awsfake.DefaultIdentityStoreID+`","GroupId":"x"}`))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/identitystore/aws4_request")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSIdentityStore.DescribeGroup")
	return http.DefaultClient.Do(req)
}

// While hanging the fake answers nothing: the client's own deadline is all
// that ends the call. Released, it answers as before.
func TestHang(t *testing.T) {
	f := awsfake.New()
	defer f.Close()
	f.Hang(true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if resp, err := post(ctx, f.URL); !errors.Is(err, context.DeadlineExceeded) {
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatalf("hanging fake answered: %v, %v", resp, err)
	}
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := post(context.Background(), f.URL)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	for f.Hung() < 2 {
		time.Sleep(time.Millisecond) // the second request reaches the fake
	}
	f.Hang(false)
	resp := <-done
	if resp == nil {
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest { // DescribeGroup of a malformed id: ValidationException
		t.Fatalf("released request: status %d", resp.StatusCode)
	}
	if got := f.Calls("DescribeGroup"); got != 2 {
		t.Fatalf("calls %d, want 2", got)
	}
}
