package jobrunner

import (
	"context"
	"fmt"
	"time"
)

// defaultBackoffLimit is the Job API's default spec.backoffLimit.
const defaultBackoffLimit = 6

// record patches the Job's status as the Job controller would after this one pod: succeeded
// with the SuccessCriteriaMet and Complete conditions, or one more failed pod and, once failed
// pods reach the backoffLimit, the FailureTarget and Failed conditions.
func (r *Runner) record(ctx context.Context, jobPath string, j job, res Result, start time.Time) error {
	now := time.Now().UTC().Format(time.RFC3339)
	started := start.UTC().Format(time.RFC3339)
	cond := func(typ, reason, msg string) map[string]any {
		return map[string]any{"type": typ, "status": "True", "reason": reason, "message": msg,
			"lastProbeTime": now, "lastTransitionTime": now}
	}

	status := map[string]any{"startTime": started, "active": 0, "ready": 0, "terminating": 0}

	if res.Succeeded {
		status["succeeded"] = 1
		status["completionTime"] = now
		status["conditions"] = []any{
			cond("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
			cond("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
		}
	} else {
		failed := j.Status.Failed + 1
		status["failed"] = failed

		limit := int32(defaultBackoffLimit)
		if j.Spec.BackoffLimit != nil {
			limit = *j.Spec.BackoffLimit
		}

		if failed > limit {
			msg := "Job has reached the specified backoff limit"
			status["conditions"] = []any{cond("FailureTarget", "BackoffLimitExceeded", msg), cond("Failed", "BackoffLimitExceeded", msg)}
		}
	}

	if err := r.API.Patch(ctx, jobPath+"/status", map[string]any{"status": status}); err != nil {
		return fmt.Errorf("jobrunner: record the pod's end in %s: %w", jobPath, err)
	}

	return nil
}
