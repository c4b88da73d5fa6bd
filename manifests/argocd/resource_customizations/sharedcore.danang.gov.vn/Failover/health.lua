-- Argo CD health of a Failover: a request that runs once, then stays as the record of how it went.
local hs = {}
local status = obj.status or {}
local phase = status.phase

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Active at " .. tostring(status.toSite) .. " (epoch " .. tostring(status.toEpoch) .. ") after "
    .. tostring(status.rtoSeconds) .. " s; data-loss window " .. tostring(status.dataLossWindowSeconds) .. " s"
  return hs
end
if phase == "Planned" then
  hs.status = "Healthy"
  hs.message = "Dry run planned: " .. (status.message or "nothing was changed")
  return hs
end
if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = status.message or "Failed"
  return hs
end

-- Pending, Running, or not yet seen by the operator: name the step in progress.
hs.status = "Progressing"
hs.message = "Waiting for the operator at " .. tostring(obj.spec.targetSite)
for _, step in ipairs(status.steps or {}) do
  if step.state == "Running" then
    hs.message = "Step " .. step.name .. " running"
  end
end
return hs
