// kernel 0: add workgroups [1,1,1]
@group(0) @binding(0) var<storage, read_write> x0: array<f32>;
@group(0) @binding(1) var<storage, read_write> x1: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= 120u) { return; }
  var crem = i;
  let c0 = crem / 60u;
  crem = crem % 60u;
  let c1 = crem / 20u;
  crem = crem % 20u;
  let c2 = crem / 5u;
  crem = crem % 5u;
  let c3 = crem;
  let v0 = x0[i];
  let v1 = x1[c1 * 5u + c3];
  let r0 = v0 + v1;
  y[i] = r0;
}
