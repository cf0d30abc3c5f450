package model

// Model-health metrics that objectives can bound (delayctl evaluate and the SLO file's model
// objectives). Quality scores come from labelled data; the PSI metrics also from a serving
// model's drift gauges.
const (
	MetricROCAUC        = "roc_auc"
	MetricPRAUC         = "pr_auc"
	MetricLogLoss       = "log_loss"
	MetricBrier         = "brier"
	MetricPredictionPSI = "prediction_psi"
	MetricFeaturePSI    = "feature_psi"
	// MetricUnseenShare is the share of rows whose category of a one-hot feature the model
	// never saw: a month outside the training period, a new airport.
	MetricUnseenShare = "unseen_share"
)

// HealthMetrics lists the model-health metrics, for messages.
const HealthMetrics = "roc_auc, pr_auc, log_loss, brier, prediction_psi, feature_psi, unseen_share"

var higherIsBetter = map[string]bool{
	MetricROCAUC: true, MetricPRAUC: true,
	MetricLogLoss: false, MetricBrier: false, MetricPredictionPSI: false, MetricFeaturePSI: false,
	MetricUnseenShare: false,
}

// HigherIsBetter reports a health metric's direction (quality scores must stay at or above
// their bound, losses and drift at or below it) and whether the metric exists.
func HigherIsBetter(metric string) (higher, ok bool) {
	higher, ok = higherIsBetter[metric]
	return higher, ok
}

// IsDriftMetric reports whether a health metric describes inputs or predictions only, so a
// serving model's gauges measure it without outcomes.
func IsDriftMetric(metric string) bool {
	return metric == MetricPredictionPSI || metric == MetricFeaturePSI || metric == MetricUnseenShare
}

// PerVariable reports whether a health metric can be narrowed to one feature variable.
func PerVariable(metric string) bool {
	return metric == MetricFeaturePSI || metric == MetricUnseenShare
}
