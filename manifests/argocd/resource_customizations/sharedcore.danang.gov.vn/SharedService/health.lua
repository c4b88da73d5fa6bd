-- Argo CD health of a SharedService, read from the status its site's operator writes (kstatus conventions:
-- observedGeneration behind or Reconciling=True is progress, Stalled=True is failure, Ready says the rest).
local function condition(type)
  for _, c in ipairs(obj.status.conditions or {}) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local hs = {}
local status = obj.status
if status == nil or status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. stalled.message
  return hs
end

local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.reason == "Paused" then
  hs.status = "Suspended"
  hs.message = reconciling.message
  return hs
end
-- A fenced site stopped its writers on purpose until it rejoins as standby: not a fault of this object.
if status.role == "Fenced" then
  hs.status = "Suspended"
  hs.message = "Fenced at site " .. tostring(status.site) .. " (epoch " .. tostring(status.epoch) .. ")"
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = reconciling.message
  return hs
end

local ready = condition("Ready")
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if ready.status ~= "True" then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. ready.message
  return hs
end

-- Lag above the service's RPO: serving, but a failover now would lose more than the objective allows.
local replication = condition("ReplicationHealthy")
if replication ~= nil and replication.status == "False" then
  hs.status = "Degraded"
  hs.message = replication.reason .. ": " .. replication.message
  return hs
end

hs.status = "Healthy"
hs.message = tostring(status.role) .. " at site " .. tostring(status.site) .. " (epoch " .. tostring(status.epoch) .. ")"
return hs
